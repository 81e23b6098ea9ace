"""pgbouncer.py: a real PgBouncer (Debian's `pgbouncer` package) in pool_mode=transaction in front
of the test PostgreSQL, for the tests that must hold behind a transaction pooler (Supabase's
pooler on port 6543, PgBouncer in front of Cloud Run / ECS deployments).

It listens on a unix socket only, in a fresh temporary directory (no TCP port, so it collides
with nothing), reaches the server named by PGHOST/PGPORT, and has few server connections per
database (default_pool_size=2), so clients share server sessions and consecutive transactions of
one client run on different sessions, as they do in production under load. PgBouncer refuses to
run as root, so as root it runs as the `postgres` system user. stop() always ends it and removes
the directory.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time

import psycopg2

PORT = 6432  # names the socket file (.s.PGSQL.6432); nothing listens on TCP


def binary():
    for path in (shutil.which("pgbouncer"), "/usr/sbin/pgbouncer"):
        if path and os.access(path, os.X_OK):
            return path
    raise RuntimeError("pgbouncer not found: install Debian's pgbouncer package "
                       "(scripts/install-deps.sh)")


class PgBouncer:
    def __init__(self, log_dir, pool_size=2):
        self.dir = tempfile.mkdtemp(prefix="orch-pgbouncer-")
        os.chmod(self.dir, 0o755)
        self.log_path = os.path.join(log_dir, "pgbouncer.log")
        self.proc = None
        host = os.environ.get("PGHOST") or "/tmp"
        port = os.environ.get("PGPORT") or "5432"
        self.user = os.environ.get("PGUSER") or "postgres"
        ini = os.path.join(self.dir, "pgbouncer.ini")
        users = os.path.join(self.dir, "userlist.txt")
        with open(users, "w") as f:
            f.write('"%s" ""\n' % self.user)
        with open(ini, "w") as f:
            f.write("\n".join([
                "[databases]",
                "* = host=%s port=%s" % (host, port),
                "[pgbouncer]",
                "listen_addr =",
                "listen_port = %d" % PORT,
                "unix_socket_dir = %s" % self.dir,
                "unix_socket_mode = 0777",
                "auth_type = trust",
                "auth_file = %s" % users,
                "pool_mode = transaction",
                "default_pool_size = %d" % pool_size,
                "min_pool_size = 0",
                "reserve_pool_size = 0",
                "max_client_conn = 400",
                "server_reset_query =",
                "ignore_startup_parameters = extra_float_digits",
                "admin_users = %s" % self.user,
                "logfile = %s" % os.path.join(self.dir, "pgbouncer.log"),
                "pidfile = %s" % os.path.join(self.dir, "pgbouncer.pid"),
                "",
            ]))
        cmd = [binary(), ini]
        if os.getuid() == 0:
            shutil.chown(self.dir, "postgres")
            for p in (ini, users):
                os.chmod(p, 0o644)
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        self._err = open(self.log_path + ".stderr", "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._err,
                                     stderr=self._err, start_new_session=True)
        deadline = time.monotonic() + 15
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                c = psycopg2.connect(self.url("postgres"), connect_timeout=2)
                c.close()
                return
            except psycopg2.Error as e:
                last = e
                time.sleep(0.1)
        log = self.log()
        self.stop()
        raise RuntimeError("pgbouncer did not start (%s); log:\n%s" % (last, log))

    def url(self, dbname):
        """A libpq URI for dbname through the pooler."""
        return "postgresql:///%s?host=%s&port=%d&user=%s" % (dbname, self.dir, PORT, self.user)

    def show(self, what):
        """SHOW <what> on the admin console (e.g. POOLS, STATS), as a list of dicts."""
        c = psycopg2.connect(self.url("pgbouncer"), connect_timeout=5)
        c.autocommit = True
        try:
            cur = c.cursor()
            cur.execute("SHOW %s" % what)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]
        finally:
            c.close()

    def log(self):
        path = os.path.join(self.dir, "pgbouncer.log")
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-4000:]
        except OSError as e:
            return "(no log: %s)" % e

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # immediate shutdown
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        if os.path.isdir(self.dir):
            try:
                shutil.copy(os.path.join(self.dir, "pgbouncer.log"), self.log_path)
            except OSError:
                pass
            shutil.rmtree(self.dir, ignore_errors=True)
        try:
            self._err.close()
        except (AttributeError, OSError):
            pass
