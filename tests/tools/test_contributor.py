"""What a contributor meets: `python -m pytest` from a checkout that has no
build in place stops with one sentence saying what to do (tests/conftest.py)."""

import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)


def test_python_m_pytest_without_a_build_says_what_to_do(tmp_path):
    # a checkout: fastloss/ with sources but no compiled extension, and tests/
    (tmp_path / "fastloss").mkdir()
    (tmp_path / "fastloss" / "__init__.py").write_text("from . import _core\n")
    (tmp_path / "tests").mkdir()
    shutil.copy(os.path.join(TESTS, "conftest.py"), tmp_path / "tests" / "conftest.py")
    (tmp_path / "tests" / "test_one.py").write_text("def test_one():\n    assert True\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 4, out
    assert "has no compiled extension" in out and "pip install -e ." in out, out
    assert "circular import" not in out, out
