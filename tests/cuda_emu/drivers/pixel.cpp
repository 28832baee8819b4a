// Harness driver of the pixel family: csrc/cuda/pixel.cu on the emulator.
#include FASTIQA_EMU_CU
#include "../driver_io.h"

using namespace fastiqa::cuda;

int main() {
  return fastiqa_emu::serve([](fastiqa_emu::Request& r) -> const char* {
    const int dt = static_cast<int>(r.i("dtype"));
    if (r.op == "pixel_fwd") {
      std::vector<unsigned char> partials(2 * pixel_fwd_blocks(r.i("n")) * fastiqa_emu::acc_bytes(dt));
      return pixel_fwd_launch(dt, r.p("a"), r.p("b"), r.p("w"), r.p("map"), r.p("grad"), partials.data(), r.p("out"),
                              r.p("gscale"), r.i("n"), static_cast<int>(r.i("wmode")), r.i("channels"), r.i("inner"),
                              static_cast<int>(r.i("kind")), r.d("c"), static_cast<int>(r.i("reduction")),
                              r.d("norm_scale"), nullptr);
    }
    if (r.op == "pixel_bwd")
      return pixel_bwd_launch(dt, r.p("g"), r.p("gp"), r.p("gt"), r.p("grad_out"), r.p("gscale"), r.i("n"), nullptr);
    return "unknown op";
  });
}
