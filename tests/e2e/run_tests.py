"""run_tests.py: runs the end-to-end scenarios (tests/e2e/test_*.py) with unittest and prints a
final "N passed, M failed" line. Arguments select test files by substring (e.g. test_02).
Without arguments, files named in ORCH_E2E_EXCLUDE (comma list of substrings) are left out:
they are registered with ctest on their own (CMakeLists.txt).
Exit status 0 only when every test passed; a suite that found no test fails. Called by run.sh,
which provides the database server and the template."""

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv):
    sys.path.insert(0, HERE)
    loader = unittest.TestLoader()
    names = sorted(f[:-3] for f in os.listdir(HERE)
                   if f.startswith("test_") and f.endswith(".py"))
    if argv:
        names = [n for n in names if any(a in n for a in argv)]
    else:
        excluded = [x for x in os.environ.get("ORCH_E2E_EXCLUDE", "").split(",") if x]
        names = [n for n in names if not any(x in n for x in excluded)]
    suite = unittest.TestSuite()
    for n in names:
        suite.addTests(loader.loadTestsFromName(n))
    total = suite.countTestCases()
    if total == 0:
        print("e2e: no test selected by %r" % (argv,), file=sys.stderr)
        print("0 passed, 1 failed")
        return 1
    started = time.monotonic()
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stderr).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    # A skip is a failure here: nothing in this suite may be skipped silently.
    failed += skipped
    print("e2e: %d tests in %.1fs" % (result.testsRun, time.monotonic() - started),
          file=sys.stderr)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and passed == total else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
