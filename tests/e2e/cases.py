# The case runner shared by the Python client scripts (redis/py, mysql/py): each @case runs
# after the script's reset, every failure is reported with its traceback, and a script whose
# cases all pass prints "ok".
import sys
import traceback

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def eq(actual, expected, what=""):
    if actual != expected:
        label = f"{what}: " if what else ""
        raise AssertionError(f"{label}expected {expected!r}, got {actual!r}")


def run_cases(reset):
    failures = []
    for fn in CASES:
        try:
            reset()
            fn()
        except Exception:
            failures.append(f"---- case {fn.__name__} ----\n{traceback.format_exc()}")
    if failures:
        sys.stderr.write("\n".join(failures))
        sys.stderr.write(f"\n{len(failures)} of {len(CASES)} cases failed\n")
        sys.exit(1)
    print("ok")
