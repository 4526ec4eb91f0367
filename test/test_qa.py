"""The documented reliability check (python -m dytrack_ros.tools.qa) end to end: every case passes. Slow (about
2-3 minutes: two node processes and ten start-up refusals); run with `bash scripts/run_tests.sh -m slow`."""
import pytest

from conftest import SHIPPED_MODEL, ros_env


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_reliability_check_passes_every_case(tmp_path, monkeypatch):
    from dytrack_ros.tools import qa
    for k, v in ros_env().items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "RELIABILITY.md"
    code = qa.main(["--model", SHIPPED_MODEL, "--out", str(out), "--soak", "3", "--flood-seconds", "2",
                    "--cycles", "10"])
    text = out.read_text()
    assert code == 0, text
    assert "| compressed image | JPEG bomb" in text and "| start-up | corrupt stage graph | yes | yes |" in text
    for case in ("| safety | an init box while the camera is out: expires, never applied | yes | yes |",
                 "| safety | stamps step back an hour while LOST: lost_seconds keeps counting, the jump is logged | "
                 "yes | yes |", "| target picker | picker: Content-Length of 5,000 digits | yes | yes |",
                 "| lifecycle | 10 deactivate/cleanup/configure/activate cycles: 10 done",
                 "| command line | dytrack-ctl --node 'bad name!' | yes | yes |"):     # issue 37
        assert case in text, case
