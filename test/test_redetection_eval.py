"""The re-detection measurement: the camera-turns-away replay of a sequence and the scoring of returns."""
import numpy as np

from dytrack_ros.data.scenarios import turned_away
from dytrack_ros.data.sequences import Sequence
from dytrack_ros.evaluation.redetection import score_returns, summarize
from dytrack_ros.tracking.tracker import LOST, TRACKING


def walker(n=120, width=400):
    """A white 20x30 square walking right across a dark 400x200 frame."""
    frames, boxes = [], []
    for i in range(n):
        f = np.full((200, width, 3), 30, np.uint8)
        x = 40 + 2 * i
        f[80:110, x:x + 20] = 255
        frames.append(f)
        boxes.append([x, 80, 20, 30])
    return Sequence("walker", frames, np.array(boxes, float))


def test_turned_away_hides_the_target_then_shows_it_where_it_now_is():
    seq = walker()
    t = turned_away(seq, start=30, pan=5, hold=20, view=0.5)
    assert t is not None and t.frame(0).shape == (200, 200, 3) and t.name == "walker~turn"
    assert turned_away(seq, start=30, pan=5, hold=20, view=0.5, label="turn60").name == "walker~turn60"
    vis = t.visible_mask()
    assert vis[:30].all() and not vis[36:55].any() and vis[65:].all()
    for i in np.flatnonzero(vis):
        x, y, w, h = t.boxes[i].round().astype(int)
        patch = t.frame(i)[y + 2:y + h - 2, max(x, 0) + 2:x + w - 2]
        assert patch.size and patch.min() == 255, i          # the ground truth lies on the target's pixels
    assert turned_away(walker(n=40)) is None                  # too short for a turn and a return


def test_returns_are_scored_as_found_late_wrong_or_missed():
    seq = walker()
    t = turned_away(seq, start=30, pan=5, hold=20, view=0.5)
    vis = t.visible_mask()
    back = int(np.flatnonzero(vis[1:] & ~vis[:-1])[0]) + 1
    boxes = np.where(vis[:, None], t.boxes, 0.0)
    states = np.where(vis, TRACKING, LOST)
    result = {"boxes": boxes.copy(), "states": states.copy(), "ms": np.ones(len(t)), "redetected": np.zeros(len(t), bool)}
    perfect = score_returns(result, t)
    assert perfect["returns"] == 1 and perfect["delays"] == [0] and perfect["wrong"] == 0
    late = dict(result, states=states.copy())
    late["states"][back:back + 7] = LOST
    assert score_returns(late, t)["delays"] == [7]
    wrong = dict(result, states=np.full(len(t), TRACKING), redetected=np.zeros(len(t), bool))
    wrong["redetected"][40] = True                            # a "re-detection" while the target is away
    s = score_returns(wrong, t)
    absent = int((~vis[1:]).sum())
    assert s["wrong"] == absent and 0 < s["wrong_after_jump"] <= absent
    missed = dict(result, states=np.where(np.arange(len(t)) < back, states, LOST))
    assert score_returns(missed, t)["delays"] == [None]
    total = summarize([score_returns(result, t), score_returns(missed, t)])
    assert total["returns"] == 2 and total["reacquired"] == 0.5 and total["median_frames"] == 0


def test_a_false_re_acquisition_counts_whichever_path_left_lost():
    seq = walker()
    t = turned_away(seq, start=30, pan=5, hold=20, view=0.5)
    vis = t.visible_mask()
    gone = int(np.flatnonzero(~vis)[0])
    back = int(np.flatnonzero(vis[1:] & ~vis[:-1])[0]) + 1
    boxes = np.where(vis[:, None], t.boxes, 0.0)
    states = np.full(len(t), TRACKING)
    states[gone:gone + 4] = LOST                  # lost when it left, then the local window takes something else
    local = {"boxes": boxes, "states": states, "ms": np.ones(len(t)), "redetected": np.zeros(len(t), bool)}
    s = score_returns(local, t)
    taken_while_away = back - (gone + 4)
    assert s["reacquisitions"] == 1 and s["false_reacquisitions"] == 1 and s["wrong_after_jump"] == 0
    assert s["wrong_after_false"] == s["wrong"] == taken_while_away
    right = dict(local, states=np.where(vis, TRACKING, LOST))  # lost while away, re-acquired on the target
    s = score_returns(right, t)
    assert s["reacquisitions"] == 1 and s["false_reacquisitions"] == 0 and s["wrong_after_false"] == 0
    total = summarize([score_returns(local, t), s])
    assert total["false_reacquisitions"] == 1 and total["wrong_after_false_share"] == taken_while_away / total["frames"]


def test_the_summary_for_results_and_card_keeps_both_suites_tables_under_their_titles(tmp_path):
    from dytrack_ros.evaluation.redetection import summary_section
    report = tmp_path / "REDETECTION.md"
    report.write_text("\n".join([
        "# Re-detection", "", "- date: 2026-11-30", "- command: `dytrack-redetect-bench`",
        "- sequences, held-out sequences (2): a, b", "- other line not copied", "",
        "### Held-out sequences (validation, never trained on)", "", "| variant | returns |", "|---|---|", "| on | 3 |",
        "", "### Training sequences (train)", "", "| variant | returns |", "|---|---|", "| on | 5 |", ""]))
    text = "\n".join(summary_section(str(report)))
    assert "other line" not in text and "- sequences, held-out sequences (2): a, b" in text
    held, train = text.index("**Held-out sequences"), text.index("**Training sequences")
    assert held < text.index("| on | 3 |") < train < text.index("| on | 5 |")
    assert summary_section(str(tmp_path / "missing.md")) == []
