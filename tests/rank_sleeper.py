"""A stand-in training rank for tests/test_train_cli.py: starts like lib/train/run_training.py (it must not outlive its
launcher), writes its PID into the folder given as argument, then sleeps."""
import os
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from lib.train.run_training import stop_with_launcher  # noqa: E402

if __name__ == "__main__":
    stop_with_launcher()
    with open(os.path.join(sys.argv[1], str(os.getpid())), "w") as f:
        f.write(os.environ.get("RANK", "-"))
    time.sleep(120)
