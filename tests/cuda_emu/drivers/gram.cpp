// Harness driver of the gram family: csrc/cuda/gram.cu on the emulator.
#include FASTIQA_EMU_CU
#include "../driver_io.h"

using namespace fastiqa::cuda;

int main() {
  return fastiqa_emu::serve([](fastiqa_emu::Request& r) -> const char* {
    const int dt = static_cast<int>(r.i("dtype"));
    const size_t acc = fastiqa_emu::acc_bytes(dt);
    const int64_t N = r.i("N"), C = r.i("C"), K = r.i("K");
    const int64_t splits = gram_splits(N, C, K);
    std::vector<unsigned char> part(splits * N * C * C * acc);
    if (r.op == "gram_fwd")
      return gram_fwd_launch(dt, r.p("f"), part.data(), r.p("g"), N, C, K, r.i("sN"), r.i("sC"), r.i("sK"), splits,
                             r.d("scale"), nullptr);
    if (r.op == "style_fwd") {
      std::vector<unsigned char> loss_part((N * gram_triangle_tiles(C) + 1) * acc);
      return style_fwd_launch(dt, r.p("x"), r.p("y"), r.p("target"), r.i("tN"), part.data(), r.p("p"),
                              loss_part.data(), r.p("loss"), N, C, K, r.i("sN"), r.i("sC"), r.i("sK"), splits,
                              r.d("scale"), static_cast<int>(r.i("criterion")), nullptr);
    }
    if (r.op == "gram_apply")
      return gram_apply_launch(dt, r.p("q"), r.i("qN"), r.p("f"), r.p("out"), N, C, K, r.i("sN"), r.i("sC"), r.i("sK"),
                               r.d("alpha"), nullptr);
    return "unknown op";
  });
}
