#!/usr/bin/env bash
# novavms-watcher: the system install (`sudo make install-system`). Idempotent; needs root.
#
#   PREFIX=/opt/novavms-watcher   the package's own venv: non-editable, no test extras
#   PYTHON=/usr/bin/python3       a system Python >= 3.11 (the unit cannot see /root or /home)
#   DOCKER_ACCESS=auto            group: the unit joins the docker group; none: it does not
#                                 (use a read-only socket proxy, see the README); auto: group
#                                 when the docker group exists
#   ROOT=                         install under this directory instead of / (tests, images);
#                                 then nothing is started
#
# Creates the system user novavms-watcher, /etc/novavms-watcher (config, keys, webhook files;
# root:novavms-watcher 0750), /var/lib/novavms-watcher (0700), installs the unit and puts
# `watcher` on PATH (/usr/local/bin). An existing config is never overwritten: the new one is
# written beside it as watcher.toml.new.
set -euo pipefail

PREFIX=${PREFIX:-/opt/novavms-watcher}
PYTHON=${PYTHON:-/usr/bin/python3}
DOCKER_ACCESS=${DOCKER_ACCESS:-auto}
ROOT=${ROOT:-}
SRC=$(cd "$(dirname "$0")/.." && pwd)
NAME=novavms-watcher
ETC=/etc/$NAME
STATE=/var/lib/$NAME
UNIT=/etc/systemd/system/$NAME.service

die() { echo "install-system: $*" >&2; exit 1; }
say() { echo "install-system: $*"; }

[[ $(id -u) -eq 0 ]] || die "needs root: sudo make install-system"
py=$(readlink -f "$(command -v "$PYTHON" || true)") || true
[[ -x $py ]] || die "no Python at $PYTHON (set PYTHON=/path/to/python3.11)"
case $py in
/root/* | /home/*) die "$PYTHON is $py, in a home directory the unit cannot see (ProtectHome=yes); use a system Python, e.g. PYTHON=/usr/bin/python3" ;;
esac
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "$PYTHON is older than 3.11"
"$py" -c 'import ensurepip, venv' 2>/dev/null || die "$PYTHON cannot create venvs: apt-get install python3-venv"

# The service user: a system account with no login shell, its home the state directory.
passwd=$ROOT/etc/passwd
if ! grep -q "^$NAME:" "$passwd"; then
    useradd ${ROOT:+--prefix "$ROOT"} --system --user-group --home-dir "$STATE" --no-create-home \
        --shell /usr/sbin/nologin --comment "novavms incident resolution watcher" "$NAME"
    say "created the system user $NAME"
fi
uid=$(awk -F: -v u="$NAME" '$1 == u {print $3}' "$passwd")
gid=$(awk -F: -v u="$NAME" '$1 == u {print $4}' "$passwd")

# The package in its own venv, as released: not editable, without the test extras.
if [[ ! -x $ROOT$PREFIX/bin/python ]]; then
    "$py" -m venv "$ROOT$PREFIX"
fi
"$ROOT$PREFIX/bin/pip" install --quiet --disable-pip-version-check --upgrade "$SRC" 2>&1 |
    grep -v -e "^WARNING: Location" -e "BuildBackendWarning" || true
"$ROOT$PREFIX/bin/watcher" --version >/dev/null || die "the installed watcher does not run"
install -m 0644 "$SRC/README.md" "$ROOT$PREFIX/README.md" # the unit's Documentation=
install -d -m 0755 "$ROOT/usr/local/bin"
ln -sfn "$PREFIX/bin/watcher" "$ROOT/usr/local/bin/watcher"
say "installed $("$ROOT$PREFIX/bin/watcher" --version) in $PREFIX; watcher is on PATH (/usr/local/bin)"

# Directories: the config readable by the service only; the state its own.
install -d -m 0750 -o 0 -g "$gid" "$ROOT$ETC"
install -d -m 0700 -o "$uid" -g "$gid" "$ROOT$STATE"
if [[ -e $ROOT$ETC/watcher.toml ]]; then
    install -m 0640 -o 0 -g "$gid" "$SRC/config/watcher.toml" "$ROOT$ETC/watcher.toml.new"
    say "kept your $ETC/watcher.toml; the shipped one is beside it as watcher.toml.new"
else
    install -m 0640 -o 0 -g "$gid" "$SRC/config/watcher.toml" "$ROOT$ETC/watcher.toml"
fi
# Secrets the daemon reads: SSH client keys and webhook URL files, root-owned, group-readable.
for secret in "$ROOT$ETC"/id_* "$ROOT$ETC"/*webhook*; do
    [[ -f $secret && $secret != *.pub ]] || continue
    chown 0:"$gid" "$secret" && chmod 0640 "$secret"
done
[[ ! -f $ROOT$ETC/known_hosts ]] || { chown 0:0 "$ROOT$ETC/known_hosts" && chmod 0644 "$ROOT$ETC/known_hosts"; }

# The unit, and Docker access as a drop-in (the docker group is root-equivalent: a choice).
install -d -m 0755 "$ROOT/etc/systemd/system"
sed "s#/opt/novavms-watcher/bin/watcher#$PREFIX/bin/watcher#" "$SRC/systemd/$NAME.service" >"$ROOT$UNIT"
chmod 0644 "$ROOT$UNIT"
dropin=$ROOT$UNIT.d/docker.conf
if [[ $DOCKER_ACCESS == auto ]]; then
    grep -q '^docker:' "$ROOT/etc/group" && DOCKER_ACCESS=group || DOCKER_ACCESS=none
fi
if [[ $DOCKER_ACCESS == group ]]; then
    install -d -m 0755 "$ROOT$UNIT.d"
    printf '# Written by install-system: docker sources read /var/run/docker.sock.\n[Service]\nSupplementaryGroups=docker\n' >"$dropin"
    say "the unit joins the docker group ($UNIT.d/docker.conf); DOCKER_ACCESS=none and a read-only socket proxy instead: see the README"
else
    rm -f "$dropin"
    say "the unit has no Docker socket access: point docker sources at a read-only socket proxy (README)"
fi

if [[ -z $ROOT && -d /run/systemd/system ]]; then
    systemctl daemon-reload
    systemctl enable --now "$NAME.service"
    say "started; check with: systemctl status $NAME; sudo -u $NAME watcher status"
else
    say "not started (no systemd here, or ROOT set): systemctl daemon-reload && systemctl enable --now $NAME"
fi
say "next: edit $ETC/watcher.toml (sources), then: sudo -u $NAME watcher check-config --config $ETC/watcher.toml"
