// Harness driver of the ssim_volume family: csrc/cuda/ssim_volume.cu on the emulator.
#include FASTIQA_EMU_CU
#include "../driver_io.h"

using namespace fastiqa::cuda;

static SsimVolGeometry geometry(const fastiqa_emu::Request& r) {
  SsimVolGeometry g{};
  g.N = r.i("N"), g.C = r.i("C"), g.D = r.i("D"), g.H = r.i("H"), g.W = r.i("W");
  g.Do = r.i("Do"), g.Ho = r.i("Ho"), g.Wo = r.i("Wo");
  g.wd = static_cast<int>(r.i("wd")), g.wh = static_cast<int>(r.i("wh")), g.ww = static_cast<int>(r.i("ww"));
  g.offd = static_cast<int>(r.i("offd")), g.offh = static_cast<int>(r.i("offh")), g.offw = static_cast<int>(r.i("offw"));
  g.padding = static_cast<int>(r.i("padding"));
  for (int k = 0; k < 5; ++k) {
    g.sx[k] = r.i("sx" + std::to_string(k));
    g.sy[k] = r.i("sy" + std::to_string(k));
  }
  return g;
}

static void strides(const fastiqa_emu::Request& r, const char* name, int64_t* s) {
  for (int k = 0; k < 5; ++k) s[k] = r.i(name + std::to_string(k));
}

int main() {
  return fastiqa_emu::serve([](fastiqa_emu::Request& r) -> const char* {
    const int dt = static_cast<int>(r.i("dtype"));
    const SsimVolGeometry geo = geometry(r);
    double window[3 * fastiqa::ssim::kMaxWin];  // depth, vertical, horizontal taps (ssim_volume_launch.h)
    fastiqa::ssim::gaussian_window(geo.wd, r.d("sigmad"), window);
    fastiqa::ssim::gaussian_window(geo.wh, r.d("sigmah"), window + geo.wd);
    fastiqa::ssim::gaussian_window(geo.ww, r.d("sigmaw"), window + geo.wd + geo.wh);
    const double c[2] = {r.d("c1"), r.d("c2")};
    // the components (optional numbers, default 0): comp, comp_y, smk / sdk (the maps' stride)
    const auto opt = [&](const char* k) { return r.num.count(k) ? r.i(k) : int64_t(0); };
    if (r.op == "ssim_volume_fwd") {
      int64_t sm[5];
      strides(r, "sm", sm);
      return ssim_volume_fwd_launch(dt, r.p("x"), r.p("y"), geo, window, c, r.p("map"), sm, r.i("want_l1") != 0,
                                    opt("comp") != 0, opt("smk"), r.p("partials"), nullptr);
    }
    if (r.op == "ssim_volume_grad") {
      int64_t sd[5], sg[5];
      strides(r, "sd", sd);
      strides(r, "sg", sg);
      return ssim_volume_grad_launch(dt, r.p("x"), r.p("y"), geo, window, c, r.p("weights"), r.p("dmap"), sd,
                                     r.p("gx"), r.p("gy"), sg, opt("comp") != 0, opt("comp_y") != 0, opt("sdk"),
                                     nullptr);
    }
    return "unknown op";
  });
}
