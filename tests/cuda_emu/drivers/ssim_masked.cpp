// Harness driver of the ssim_masked family: csrc/cuda/ssim_masked.cu on the emulator.
#include FASTIQA_EMU_CU
#include "../driver_io.h"

using namespace fastiqa::cuda;

static void strides5(const fastiqa_emu::Request& r, const std::string& name, int64_t* s) {
  for (int k = 0; k < 5; ++k) {
    const std::string key = name + std::to_string(k);
    s[k] = r.num.count(key) ? r.i(key) : 0;
  }
}

int main() {
  return fastiqa_emu::serve([](fastiqa_emu::Request& r) -> const char* {
    const int dt = static_cast<int>(r.i("dtype"));
    MaskedGeometry g{};
    g.N = r.i("N"), g.C = r.i("C"), g.D = r.i("D"), g.H = r.i("H"), g.W = r.i("W");
    g.Do = r.i("Do"), g.Ho = r.i("Ho"), g.Wo = r.i("Wo");
    g.kd = static_cast<int>(r.i("kd")), g.kh = static_cast<int>(r.i("kh")), g.kw = static_cast<int>(r.i("kw"));
    g.padding = static_cast<int>(r.i("padding"));
    strides5(r, "sx", g.sx);
    strides5(r, "sy", g.sy);
    strides5(r, "sm", g.sm);
    strides5(r, "smap", g.smap);
    strides5(r, "sg", g.sg);
    strides5(r, "sdm", g.sdm);
    if (g.kd > 1) {
      fastiqa::ssim::gaussian_window(g.kd, r.d("sigmad"), g.gd);
    } else {
      g.gd[0] = 1.0;
    }
    fastiqa::ssim::gaussian_window(g.kh, r.d("sigmah"), g.gh);
    fastiqa::ssim::gaussian_window(g.kw, r.d("sigmaw"), g.gw);
    g.c1 = r.d("c1");
    g.c2 = r.d("c2");
    if (r.op == "fwd") return ssim_masked_fwd_launch(dt, r.p("x"), r.p("y"), r.p("m"), g, r.p("map"), r.p("partials"),
                                                     nullptr);
    if (r.op == "bwd")
      return ssim_masked_bwd_launch(dt, r.p("x"), r.p("y"), r.p("m"), g, r.p("d_planes"), r.p("d_map"), r.p("coef"),
                                    r.p("gx"), r.p("gy"), nullptr);
    return "unknown op";
  });
}
