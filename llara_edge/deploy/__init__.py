"""Deploying an export directory to a robot over SSH (OpenSSH + rsync) and installing it there.

transport.py: the ssh/rsync command lines and their failures as typed errors.
install.py:   the atomic install on the device (copy into DIR/.incoming-<sha>, verify there
              with `llara-edge verify` run ON the device, swap DIR/current, keep DIR/previous).
"""
