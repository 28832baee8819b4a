"""Statistics of fastiqa.human against hand-computed cases, against SUREAL / choix
when installed, and against synthetic raters with a known truth."""

import contextlib
import io
import math

import numpy as np
import pytest

pytest.importorskip("scipy", reason="the human statistics need scipy (pip install fastiqa[human])")

from fastiqa.human.stats import agreement, mos, pairwise, screening  # noqa: E402


# --- MOS ------------------------------------------------------------------------------------
def test_mean_ci_student_t_by_hand():
    r = mos.mean_ci([1, 2, 3, 4, 5])
    # s = sqrt(2.5); t(0.975, 4) = 2.7764451051977987; ci = t s / sqrt(5)
    assert r["mean"] == 3 and r["n"] == 5
    assert r["std"] == pytest.approx(math.sqrt(2.5))
    assert r["ci"] == pytest.approx(2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5), rel=1e-12)


def test_mean_ci_single_vote_has_no_interval():
    r = mos.mean_ci([4])
    assert r["mean"] == 4 and r["n"] == 1 and math.isnan(r["ci"])


def test_differential_scores_p910_by_hand():
    recs = [
        {"rater": "a", "content": "c", "method": "reference", "value": 5},
        {"rater": "a", "content": "c", "method": "x", "value": 3},
        {"rater": "b", "content": "c", "method": "reference", "value": 4},
        {"rater": "b", "content": "c", "method": "reference", "value": 5},
        {"rater": "b", "content": "c", "method": "x", "value": 4},
        {"rater": "c", "content": "c", "method": "x", "value": 2},
    ]  # no reference vote: left out
    dv = {r["rater"]: r["value"] for r in mos.differential_scores(recs, 5)}
    assert dv == {"a": 3 - 5 + 5, "b": 4 - 4.5 + 5}


# --- BT.500 ---------------------------------------------------------------------------------
HIGH = [2] * 4 + [3] * 8 + [4] * 4 + [5]  # mean 3.1176, S 0.8575, beta2 2.607: the last vote >= mean + 2S
LOW = [2] * 4 + [3] * 8 + [4] * 4 + [1]  # mirror: the last vote <= mean - 2S


@pytest.mark.parametrize(
    "rows, P, Q, rejected",
    [
        ([HIGH, LOW, HIGH, LOW], 2, 2, True),  # 4 of 4 outside, balanced: rejected
        ([HIGH, HIGH, HIGH, LOW], 3, 1, False),  # |P - Q| / (P + Q) = 0.5 >= 0.3: a biased rater, kept
        ([HIGH, [3] * 17, [3] * 17, [3] * 17], 1, 0, False),  # 1 of 4 but one-sided
    ],
    ids=["balanced", "one-sided", "single"],
)
def test_bt500_rule_by_hand(rows, P, Q, rejected):
    res = screening.bt500_screen(np.array(rows, float))
    last = res[-1]
    assert (last["P"], last["Q"], last["n"], last["rejected"]) == (P, Q, 4, rejected)
    assert all(r["P"] == r["Q"] == 0 and not r["rejected"] for r in res[:-1])


def test_bt500_non_normal_rows_use_the_sqrt20_band():
    row = [1] * 3 + [2] * 5 + [3] * 5 + [4] * 5 + [5] * 2  # beta2 = 1.995 < 2
    res = screening.bt500_screen(np.array([row, row], float))
    assert all(r["P"] == r["Q"] == 0 for r in res)


# --- P.913 ML subject model -------------------------------------------------------------------
def test_ml_model_recovers_an_exact_additive_study():
    psi, bias = np.array([1.0, 2.0, 3.0, 4.5]), np.array([-0.5, 0.0, 0.5])
    u = psi[:, None] + bias[None, :]
    r = screening.ml_subject_model(u)
    np.testing.assert_allclose(r["psi"], psi, atol=1e-9)
    np.testing.assert_allclose(r["bias"], bias, atol=1e-9)
    assert not r["flagged"].any()


def test_ml_model_weights_consistent_raters():
    rng = np.random.default_rng(1)
    psi = rng.uniform(1, 5, 40)
    noise = np.array([0.2, 0.2, 0.2, 2.0])
    u = psi[:, None, None] + noise[None, :, None] * rng.normal(size=(40, 4, 2))  # two repeats
    r = screening.ml_subject_model(u)
    np.testing.assert_allclose(r["inconsistency"], noise, rtol=0.35)
    assert np.abs(r["psi"] - psi).mean() < np.abs(u.mean((1, 2)) - psi).mean()  # better than the plain MOS
    assert r["flagged"].tolist() == [False, False, False, True]


def test_ml_model_degenerate_case_is_floored():
    # one vote per stimulus and few raters: the likelihood grows without bound as one rater's
    # inconsistency goes to 0 (SUREAL's solvers go there too); the floor keeps it finite
    rng = np.random.default_rng(1)
    psi = rng.uniform(1, 5, 40)
    u = psi[:, None] + np.array([0.2, 0.2, 0.2, 2.0]) * rng.normal(size=(40, 4))
    r = screening.ml_subject_model(u, floor=0.05)
    assert r["inconsistency"].min() >= 0.05 and np.isfinite(r["psi"]).all()


def test_ml_model_handles_missing_votes_and_repeats():
    rng = np.random.default_rng(2)
    psi = rng.uniform(1, 5, 12)
    u = psi[:, None, None] + 0.3 * rng.normal(size=(12, 5, 2))
    u[::3, 1, :] = np.nan
    r = screening.ml_subject_model(u)
    assert np.corrcoef(r["psi"], psi)[0, 1] > 0.98


def test_ml_model_bad_input_names_the_rule():
    with pytest.raises(ValueError, match="every rater"):
        screening.ml_subject_model(np.array([[1.0, np.nan], [2.0, np.nan]]))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # sureal divides by zero in its own CI of a collapsed rater
def test_ml_model_matches_sureal():
    sureal = pytest.importorskip("sureal", reason="sureal is not installed (pip install sureal)")
    from sureal.dataset_reader import RawDatasetReader
    from sureal.subjective_model import MaximumLikelihoodEstimationModelContentOblivious as Model

    rng = np.random.default_rng(3)  # a case where one rater collapses to inconsistency 0 in both
    psi = rng.uniform(1, 5, 10)
    u = np.clip(
        np.round(psi[:, None] + rng.normal(0, 0.2, 6)[None] + rng.uniform(0.3, 1.0, 6) * rng.normal(size=(10, 6))), 1, 5
    )

    class Dataset:
        dataset_name = "t"
        yuv_fmt = "notyuv"
        width = height = 8
        ref_videos = [{"content_id": j, "content_name": f"c{j}", "path": f"r{j}"} for j in range(10)]
        dis_videos = [{"content_id": j, "asset_id": j, "os": list(u[j]), "path": f"d{j}"} for j in range(10)]

    with contextlib.redirect_stdout(io.StringIO()):  # sureal prints its iterations
        ref = Model(RawDatasetReader(Dataset)).run_modeling(force_subjbias_zeromean=True)
    ours = screening.ml_subject_model(u)
    assert sureal is not None
    np.testing.assert_allclose(ours["psi"], ref["quality_scores"], atol=2e-3)
    np.testing.assert_allclose(ours["bias"], ref["observer_bias"], atol=2e-3)
    np.testing.assert_allclose(ours["inconsistency"], ref["observer_inconsistency"], atol=2e-3)


# --- pairwise -------------------------------------------------------------------------------
def test_thurstone_75_percent_is_one_jod():
    q = pairwise.fit(np.array([[0, 3], [1, 0]]), "thurstone", anchor=1)
    assert q[0] == pytest.approx(1.0, abs=1e-5) and q[1] == 0


def test_bradley_terry_two_items_by_hand():
    q = pairwise.fit(np.array([[0, 3], [1, 0]]), "bt", anchor=1)
    assert q[0] == pytest.approx(math.log(3), abs=1e-5)


def test_pairwise_prior_keeps_unanimous_answers_finite():
    q = pairwise.fit(np.array([[0, 10], [0, 0]]), "thurstone", alpha=0.01)
    assert np.isfinite(q).all() and 0 < q[0] - q[1] < 50


def test_pairwise_bad_counts_named():
    with pytest.raises(ValueError, match="counts"):
        pairwise.fit(np.array([[0, -1], [1, 0]]))
    with pytest.raises(ValueError, match="model"):
        pairwise.fit(np.array([[0, 1], [1, 0]]), "elo")


COUNTS = np.array([[0, 7, 9, 8], [3, 0, 6, 7], [1, 4, 0, 5], [2, 3, 5, 0]], float)


def test_bradley_terry_matches_choix():
    choix = pytest.importorskip("choix", reason="choix is not installed (pip install choix)")
    data = [(i, j) for i in range(4) for j in range(4) for _ in range(int(COUNTS[i, j]))]
    ref = choix.mm_pairwise(4, data, alpha=0.0, max_iter=100000, tol=1e-12)
    ours = pairwise.fit(COUNTS, "bt")
    np.testing.assert_allclose(ours - ours.mean(), ref - ref.mean(), atol=1e-5)


def test_bradley_terry_satisfies_the_ml_equations():
    # ML condition (Zermelo / Hunter 2004): wins_i = sum_j n_ij p_ij for every item
    q = pairwise.fit(COUNTS, "bt")
    n = COUNTS + COUNTS.T
    p = 1 / (1 + np.exp(-(q[:, None] - q[None, :])))
    np.fill_diagonal(p, 0)
    np.testing.assert_allclose((n * p).sum(1), COUNTS.sum(1), atol=1e-5)


def test_thurstone_recovers_simulated_jod():
    rng = np.random.default_rng(4)
    truth = np.array([0.0, 0.8, 1.5, -0.7])
    comps = []
    for r in range(100):
        for i in range(4):
            for j in range(i + 1, 4):
                for _ in range(3):
                    p = pairwise.preference_probability(truth[i] - truth[j])
                    comps.append((r, i, j) if rng.random() < p else (r, j, i))
    b = pairwise.bootstrap(comps, 4, "thurstone", samples=40, seed=0)
    np.testing.assert_allclose(b["scores"], truth, atol=0.25)
    assert ((b["ci_low"] <= b["scores"]) & (b["scores"] <= b["ci_high"])).all()
    assert b["significant"][2, 3] and b["significant"][3, 2] and not b["significant"][0, 0]


# --- P.1401 agreement ---------------------------------------------------------------------------
def test_rank_correlations_by_hand():
    a = agreement.agreement([1, 2, 3, 4, 5, 6], [2, 1, 4, 3, 5, 6])
    # Spearman: sum d^2 = 4, rho = 1 - 6*4/(6*35); Kendall: 2 discordant of 15 pairs, tau = 11/15
    assert a["srocc"] == pytest.approx(1 - 24 / 210)
    assert a["krocc"] == pytest.approx(11 / 15)


def test_logistic_mapping_is_exact_on_logistic_data():
    x = np.linspace(20, 40, 15)
    y = agreement.logistic4(x, 4.6, 1.2, 31.0, 2.5)
    a = agreement.agreement(x, y)
    assert a["plcc_logistic"] == pytest.approx(1.0, abs=1e-6)
    assert a["rmse_logistic"] == pytest.approx(0.0, abs=1e-4)
    assert a["srocc"] == pytest.approx(1.0) and a["krocc"] == pytest.approx(1.0)


def test_lower_is_better_metric_flips_sign():
    x = np.linspace(0.1, 0.5, 10)
    y = 5 - 6 * x
    a = agreement.agreement(x, y, higher_is_better=False)
    assert a["srocc"] == pytest.approx(1.0) and a["plcc_raw"] == pytest.approx(1.0)


def test_rmse_uses_n_minus_4_and_outlier_ratio_uses_2_sigma_over_sqrt_n():
    x = np.linspace(0, 1, 9)
    y = x**3 + 0.5 * x  # a monotone cubic: the polynomial mapping is exact
    a = agreement.agreement(x, y, mos_std=np.full(9, 1e-6), mos_n=np.full(9, 4))
    assert a["rmse_poly3"] == pytest.approx(0.0, abs=1e-6)
    y2 = y.copy()
    y2[4] += 0.3
    b = agreement.agreement(x, y2)
    resid = y2 - agreement.poly3(x, b["poly3"])
    assert b["rmse_poly3"] == pytest.approx(math.sqrt((resid**2).sum() / (9 - 4)))
    big = agreement.agreement(x, y2, mos_std=np.full(9, 10.0), mos_n=np.full(9, 4))
    assert big["outlier_ratio"] == 0.0 and a["outlier_ratio"] >= 0.0


def test_poly3_mapping_is_monotonic():
    x = np.linspace(0, 1, 30)
    y = x + 0.25 * np.sin(3 * np.pi * x)
    c = agreement.fit_poly3_monotonic(x, y)
    slope = np.polynomial.polynomial.polyval(np.linspace(0, 1, 200), np.polynomial.polynomial.polyder(c))
    assert slope.min() > -1e-6
    free = np.polyfit(x, y, 3)
    assert ((agreement.poly3(x, c) - y) ** 2).sum() >= ((np.polyval(free, x) - y) ** 2).sum() - 1e-9


def test_fisher_z_by_hand():
    z, p = agreement.fisher_z(0.9, 30, 0.8, 30)
    assert z == pytest.approx((1.4722194895832204 - 1.0986122886681098) / math.sqrt(2 / 27), rel=1e-9)
    assert p == pytest.approx(0.16985, abs=2e-4)


def test_agreement_needs_five_stimuli():
    with pytest.raises(ValueError, match="at least 5"):
        agreement.agreement([1, 2, 3], [1, 2, 3])


def test_mappings_are_increasing_so_anticorrelation_shows():
    x = np.linspace(0, 1, 12)
    y = 5 - 4 * x + 0.05 * np.sin(7 * x)  # the metric disagrees with the scores
    a = agreement.agreement(x, y)
    assert a["logistic"][0] >= a["logistic"][1] and a["srocc"] < -0.9
    assert not a["plcc_logistic"] > 0.5  # a decreasing fit would have reported a high PLCC
