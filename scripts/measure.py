"""Run a command, save its stdout to a file, and print 'SECONDS PEAK_RSS_MB' on stdout.

Peak RSS comes from the kernel's accounting of the child (getrusage), so it is the
real high-water mark of the mongoshift process, not a sample.
"""
import resource
import subprocess
import sys
import time

out_path, cmd = sys.argv[1], sys.argv[2:]
start = time.time()
with open(out_path, "wb") as out:
    rc = subprocess.run(cmd, stdout=out).returncode
elapsed = time.time() - start
peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
if rc != 0:
    sys.exit(f"command failed with exit {rc}: {' '.join(cmd)}")
print(f"{elapsed:.2f} {peak_mb:.0f}")
