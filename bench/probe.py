"""One cold start, in a fresh interpreter: run by bench.cold_start, never imported by it.

argv: mode (baseline | function), first (0 | 1), then for a baseline the service and
the AWS call to make, for a function its code directory and event file. Prints one line
"BENCH {json}" with the import time, the total time (wall and CPU) and the peak RSS of this process.
"""

import json
import sys
import time


def peak_rss_kb() -> int:
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the parent
    # through fork and exec, so every probe would report the benchmark's own peak.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


mode, first = sys.argv[1], sys.argv[2] == "1"
if mode == "function":
    code_dir, event_file = sys.argv[3], sys.argv[4]
    with open(event_file) as stream:
        event = json.load(stream)
    sys.path.insert(0, code_dir)
    from devtools.context import LambdaContext  # a dataclass; imports nothing of note

    context = LambdaContext()

started, cpu_started = time.perf_counter(), time.process_time()
if mode == "baseline":
    import boto3

    service, operation, params = sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
    # Any service named on the command line: no Literal for boto3-stubs' overloads.
    client = boto3.client(service)  # type: ignore[call-overload]
    imported = time.perf_counter()
    if first:
        getattr(client, operation)(**params)
else:
    # The function module, as Lambda's INIT imports it, from the code dir put on sys.path.
    import app  # type: ignore[import-not-found]

    imported = time.perf_counter()
    if first:
        response = app.handler(event, context)
        if response["statusCode"] >= 300:
            sys.exit(f"handler answered {response['statusCode']}: {response['body']}")
finished, cpu_finished = time.perf_counter(), time.process_time()

print(
    "BENCH "
    + json.dumps(
        {
            "import_ms": (imported - started) * 1000,
            "total_ms": (finished - started) * 1000,
            # CPU time: on a busy machine, what this process did rather than how long it
            # waited for a core (the loopback AWS calls cost it little CPU either way).
            "cpu_total_ms": (cpu_finished - cpu_started) * 1000,
            "peak_rss_kb": peak_rss_kb(),
        }
    ),
    flush=True,
)
