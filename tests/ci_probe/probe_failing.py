"""A test that fails on purpose, for the CI entry-point test to run through `.ci/run`.

The file name does not match `test_*.py`, so a plain `pytest` run never collects it; the
CI entry-point test names it on the command line.
"""


def test_deliberately_fails() -> None:
    assert sum([1, 2, 3]) == 7, "this probe fails on purpose"
