// Harness driver of the perceptual family: csrc/cuda/perceptual.cu on the emulator.
#include FASTIQA_EMU_CU
#include "../driver_io.h"

using namespace fastiqa::cuda;

int main() {
  return fastiqa_emu::serve([](fastiqa_emu::Request& r) -> const char* {
    const int dt = static_cast<int>(r.i("dtype"));
    const int64_t n = r.i("n"), c = r.i("c"), hw = r.i("hw");
    if (r.op == "lpips_fwd" || r.op == "dists_fwd") {
      const bool dists = r.op == "dists_fwd";
      std::vector<unsigned char> scratch((dists ? n * c : lpips_fwd_partials(n, hw)) * fastiqa_emu::acc_bytes(dt));
      return (dists ? dists_fwd_launch : lpips_fwd_launch)(dt, r.p("x"), r.p("y"), r.p("w"), scratch.data(),
                                                           r.p("value"), n, c, hw, nullptr);
    }
    if (r.op == "lpips_bwd" || r.op == "dists_bwd")
      return (r.op == "dists_bwd" ? dists_bwd_launch : lpips_bwd_launch)(dt, r.p("x"), r.p("y"), r.p("w"),
                                                                         r.p("grad_out"), r.p("gx"), r.p("gy"), n, c,
                                                                         hw, nullptr);
    return "unknown op";
  });
}
