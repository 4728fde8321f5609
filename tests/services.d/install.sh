# install-system on a fresh root (tests/test_install.py): a system Python that makes venvs,
# useradd, setpriv (to run the installed daemon as the service user) and systemd-analyze.
{ [[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null; } || need+=(python3 python3-venv)
command -v useradd >/dev/null || need+=(passwd)
command -v setpriv >/dev/null || need+=(util-linux)
command -v systemd-analyze >/dev/null || need+=(systemd)
