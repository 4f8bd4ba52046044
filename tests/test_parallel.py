"""kerashw.parallel: the spawn pool behind image generation and preprocessing."""
import os
import subprocess
import sys
import textwrap


def test_pool_children_never_import_the_parents_main(tmp_path):
    """The console script `kerashw-tui` is __main__; a child that re-imported it imported
    textual_image, whose terminal query came back to the app as keys (c = Cancel)."""
    marker = tmp_path / "imported-by"
    script = tmp_path / "front_end.py"
    script.write_text(textwrap.dedent(f"""
        import os
        with open({str(marker)!r}, "a") as f:  # what the TUI's import did to the terminal
            f.write(f"{{os.getpid()}}\\n")
        if __name__ == "__main__":
            from kerashw.parallel import map_progress
            print(map_progress(abs, [-1, -2, -3, -4], total=4, description="x"))
            print(os.getpid())
    """))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "KERASHW_WORKERS": "2"})
    assert r.returncode == 0, r.stderr
    result, parent = r.stdout.split()[:-1], r.stdout.split()[-1]
    assert "".join(result) == "[1,2,3,4]"
    assert marker.read_text().split() == [parent]  # imported once, by the parent alone


def test_a_failing_job_stops_the_pool_at_once(monkeypatch):
    """An error (or Ctrl-C) in the parent terminates the children instead of waiting for them."""
    import pytest

    from kerashw.parallel import map_progress

    monkeypatch.setenv("KERASHW_WORKERS", "2")
    with pytest.raises(TypeError):
        map_progress(abs, [-1, "not a number", -3], total=3, description="x")
