"""Statistics of subjective studies, written from the standards' formulas:

    mos        MOS / DMOS with Student-t 95% confidence intervals (ITU-R BT.500, ITU-T P.910)
    screening  BT.500 Annex 1 2.3.1 kurtosis rule; P.910 Annex E / P.913 12.6 ML subject model
    pairwise   Thurstone Case V in JOD units, Bradley-Terry; bootstrap over raters
    agreement  ITU-T P.1401: PLCC after a monotonic mapping, SROCC, KROCC, RMSE, outlier ratio, Fisher z

They need scipy (the `human` extra); fastiqa.human.stats.require() says so when it is absent.
"""


def require(what="the analysis"):
    """Import scipy or raise an ImportError naming the extra to install."""
    try:
        import scipy  # noqa: F401
    except ImportError:
        raise ImportError(f"{what} needs scipy: pip install \"fastiqa[human]\"") from None
