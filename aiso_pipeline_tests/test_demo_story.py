"""`aiso demo` tells its story: the checks that fail are the faults the generator planted, and the scorecard's red
cells say why (a shorter demo than the default 14 days, same volumes)."""
import duckdb
import pytest

from aiso_pipeline.cli import main
from aiso_pipeline.generate.world import FEATURES, RECS

DAYS = 7


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "data"
    assert main(["--data-dir", str(root), "demo", "--days", str(DAYS)]) == 0
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    yield con
    con.close()


def test_only_the_planted_faults_fail_their_checks(demo):
    failing = dict(demo.execute("""SELECT check_name, count(*) FILTER (WHERE NOT passed) FROM quality.check_results
                                   GROUP BY check_name HAVING count(*) FILTER (WHERE NOT passed) > 0""").fetchall())
    assert failing == {
        "outcome_join_rate": DAYS,  # recommendations never logs `Answer Shown`
        "unpriced_share": 3,  # the self-hosted model is priced from the fourth day
        "files_quarantined": 3,  # three days each land one unreadable file
        "outcomes_unknown_request_id": 1,  # one client release
        "experiment_sample_ratio_mismatch:srm_test": DAYS,  # the buggy assignment service
        "experiment_mixed_variant_users:srm_test": DAYS,
    }


def test_the_under_instrumented_feature_is_a_red_cell_with_its_reason(demo):
    recs = FEATURES[RECS]
    rows = demo.execute("""SELECT model, feature_join_rate_status, worst_join_feature FROM marts.scorecard
                           WHERE dt = (SELECT max(dt) FROM marts.scorecard)""").fetchall()
    # every model serving recommendations is red (or amber, at 80-95%) for it, and no other model is
    flagged = {m: status for m, status, feature in rows if status in ("fail", "warn")}
    assert set(flagged) == set(recs.models) and "fail" in flagged.values()
    assert all(f == "recommendations" for m, s, f in rows if m in flagged)
    reason = demo.execute("""SELECT reason FROM marts.scorecard_checks WHERE check_name = 'feature_join_rate'
                             AND status = 'fail' LIMIT 1""").fetchall()[0][0]
    assert "(recommendations) is below its target ≥ 95.0% and fails" in reason


def test_noise_does_not_fail_scorecard_cells(demo):
    """Cost trends over few conversions are not judged, slices without evidence do not fail, and the usual
    models' error rates pass: what is red has a planted cause."""
    fails = demo.execute("""SELECT check_name, model, count(*) FROM marts.scorecard_checks WHERE status = 'fail'
                            GROUP BY ALL ORDER BY ALL""").fetchall()
    planted = {"feature_join_rate", "experiment_power", "open_anomalies", "error_rate"}
    assert {c for c, *_ in fails} <= planted | {"cost_per_success_trend"}, fails
    assert {m for c, m, _ in fails if c == "error_rate"} <= {"acme-internal-7b"}  # it errs 4% of calls
    # power is red only while the experiments accrue users (the first days)
    late = demo.execute("""SELECT count(*) FROM marts.scorecard_checks WHERE check_name = 'experiment_power'
                           AND status = 'fail' AND dt >= (SELECT min(dt) + 4 FROM marts.scorecard)""").fetchall()
    assert late == [(0,)]


def test_evidently_pages_are_rendered_where_a_shift_is_significant(demo):
    """The default drift_reports: a page for a model only on a night one of its drifted columns shifted
    significantly (what alerts): the planted drift's model on its drifted days, and no quiet model-night."""
    pages = demo.execute("""SELECT dt, model FROM marts.drift_summary WHERE report_path IS NOT NULL""").fetchall()
    shifted = set(demo.execute("""SELECT DISTINCT dt, model FROM marts.drift_metrics
                                  WHERE drifted AND shift_p_value < 0.001""").fetchall())
    assert set(pages) == shifted and any(m == "gpt-4o-mini" for _, m in pages)
