// Request loop of the harness drivers (tests/cuda_emu/drivers/*.cpp): the Python side
// (tests/cuda_emu/emu.py) sends requests on stdin and reads the replies on stdout.
//   request:  "<op> <gpu>\n" "<name>=<number> ...\n" "<count>\n" then per array "<name> <bytes>\n" + bytes
//   reply:    "ok <count> <vector ops>\n" + the arrays the same way (all of them, written in place),
//             or "err <text>\n"; <vector ops>: the 16-byte global loads and stores the request made
// Arrays are exact-size heap buffers (AddressSanitizer sees any overflow), 16-byte aligned
// (checked); an array may start <name>_off bytes into its buffer (number `<name>_off`,
// default 0: a misaligned start); an empty array is a null pointer.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace fastiqa_emu {

struct Request {
  std::string op, gpu;
  std::map<std::string, double> num;
  std::vector<std::string> order;
  std::map<std::string, std::vector<unsigned char>> arr;

  double d(const std::string& k) const {
    auto it = num.find(k);
    if (it == num.end()) fail("request " + op + ": missing number " + k);
    return it->second;
  }
  int64_t i(const std::string& k) const { return static_cast<int64_t>(d(k)); }
  void* p(const std::string& k) {
    auto it = arr.find(k);
    if (it == arr.end()) fail("request " + op + ": missing array " + k);
    if (it->second.empty()) return nullptr;
    if (reinterpret_cast<uintptr_t>(it->second.data()) & 15u) fail("array " + k + ": buffer not 16-byte aligned");
    auto off = num.find(k + "_off");
    const size_t o = off == num.end() ? 0 : static_cast<size_t>(off->second);
    if (o >= it->second.size()) fail("array " + k + ": offset past its buffer");
    return it->second.data() + o;
  }
};

inline bool read_line(std::string& line) {
  line.clear();
  int c;
  while ((c = std::fgetc(stdin)) != EOF && c != '\n') line.push_back(static_cast<char>(c));
  return c != EOF || !line.empty();
}

inline bool read_request(Request& r) {
  std::string line;
  if (!read_line(line)) return false;
  r = Request{};
  std::istringstream head(line);
  head >> r.op >> r.gpu;
  read_line(line);
  std::istringstream nums(line);
  std::string kv;
  while (nums >> kv) {
    const auto eq = kv.find('=');
    r.num[kv.substr(0, eq)] = std::strtod(kv.c_str() + eq + 1, nullptr);
  }
  read_line(line);
  const int count = std::atoi(line.c_str());
  for (int k = 0; k < count; ++k) {
    read_line(line);
    std::istringstream a(line);
    std::string name;
    size_t bytes = 0;
    a >> name >> bytes;
    std::vector<unsigned char> buf(bytes);
    if (bytes && std::fread(buf.data(), 1, bytes, stdin) != bytes) fail("short read of array " + name);
    r.order.push_back(name);
    r.arr[name] = std::move(buf);
  }
  return true;
}

// Serves requests until stdin closes; handle(request) returns nullptr or an error text.
template <typename Handler> int serve(Handler handle) {
  Request r;
  while (read_request(r)) {
    if (!set_gpu(r.gpu)) fail("unknown emulated GPU " + r.gpu);
    rt().max_dynamic_smem.clear();
    rt().vector_ops = 0;
    const char* err = handle(r);
    if (!err && rt().last_error) err = cudaGetErrorString(static_cast<cudaError_t>(rt().last_error));
    rt().last_error = 0;
    if (err) {
      std::printf("err %s\n", err);
    } else {
      std::printf("ok %zu %llu\n", r.order.size(), rt().vector_ops);
      for (const std::string& name : r.order) {
        const auto& buf = r.arr[name];
        std::printf("%s %zu\n", name.c_str(), buf.size());
        if (!buf.empty()) std::fwrite(buf.data(), 1, buf.size(), stdout);
      }
    }
    std::fflush(stdout);
  }
  return 0;
}

inline size_t acc_bytes(int64_t dtype) { return dtype == 1 ? 8 : 4; }  // kF64 accumulates in double

}  // namespace fastiqa_emu
