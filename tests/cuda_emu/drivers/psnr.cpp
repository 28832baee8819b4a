// Harness driver of the psnr family: csrc/cuda/psnr.cu on the emulator.
#include FASTIQA_EMU_CU
#include "../driver_io.h"

using namespace fastiqa::cuda;

int main() {
  return fastiqa_emu::serve([](fastiqa_emu::Request& r) -> const char* {
    const int dt = static_cast<int>(r.i("dtype"));
    if (r.op == "psnr_fwd") {
      const bool luma = r.i("luma") != 0;
      const int64_t count = (luma ? 1 : r.i("c")) * r.i("hh") * r.i("ww");
      std::vector<unsigned char> partials(r.i("n") * psnr_fwd_blocks(r.i("n"), count) * fastiqa_emu::acc_bytes(dt));
      return psnr_fwd_launch(dt, r.p("x"), r.p("y"), r.p("grad"), partials.data(), r.p("stat"), r.i("n"), r.i("c"),
                             r.i("hh"), r.i("ww"), r.i("sn"), r.i("sc"), r.i("sh"), r.i("sw"), r.i("crop"),
                             static_cast<int>(r.i("kind")), luma, r.i("quantize") != 0, r.d("data_range"), nullptr);
    }
    if (r.op == "psnr_bwd")
      return psnr_bwd_launch(dt, r.p("g"), r.p("gx"), r.p("gy"), r.p("grad_out"), r.i("n"), r.i("per"), nullptr);
    return "unknown op";
  });
}
