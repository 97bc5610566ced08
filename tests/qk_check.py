"""The harness of the Python test scripts: check() counts a case (and prints a failure),
finish(suite) prints "suite: N passed, N failed" and exits 1 when any failed."""
import sys

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


def finish(suite):
    print(f"{suite}: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
