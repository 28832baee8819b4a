// The Python module fastiqa._C. The compiled kernels' schemas (namespace fastiqa_C)
// are written once, in fastiqa/_kernel_schemas.py, and defined by fastiqa/_ext.py
// after this library is loaded; the C++ files only register implementations
// (csrc/cpu/register.cpp, csrc/cuda/<family>_host.cpp), which the dispatcher checks
// against those schemas.
#include <Python.h>

// An importable (empty) Python module: importing fastiqa._C loads this library
// and with it the registrations above.
PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
