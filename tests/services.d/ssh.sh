# Journal sources: a real sshd on loopback, a real journald, systemd-cat, and ip netns for link cuts.
command -v sshd >/dev/null || [[ -x /usr/sbin/sshd ]] || need+=(openssh-server)
command -v systemd-cat >/dev/null || [[ -x /lib/systemd/systemd-journald ]] || need+=(systemd)
command -v ip >/dev/null || need+=(iproute2)

# The account the tests log in as: /bin/sh (a login shell that starts fast and dies with its
# channel), allowed to read the system journal, unlocked for key logins but without a password.
start_journal_test_user() {
    getent group systemd-journal >/dev/null || groupadd --system systemd-journal
    if ! id watcher-test >/dev/null 2>&1; then
        useradd --system --create-home --home-dir /var/lib/watcher-test --shell /bin/sh \
            --groups systemd-journal watcher-test
    fi
    usermod --password '*' watcher-test
    mkdir -p /run/sshd
}
starts+=(start_journal_test_user)
