"""The SLURM profile (profiles/slurm) on a real single-node SLURM cluster on localhost.

The cluster tests install Debian's SLURM packages (slurmctld, slurmd, slurm-client, munge) if
they are missing, write /etc/slurm/slurm.conf (the plugin's job step strips SLURM_* variables,
so SLURM_CONF alone does not reach the jobs) and start munged, slurmctld and slurmd as
background processes, which the fixture stops by their process ids whatever happens. They
need root and apt; elsewhere they are skipped with the reason. The micro config then runs
through the shipped profile, and the results must equal a local run's (`micro_run`).

The static tests at the end check the profile itself (option names against the installed
plugin, a comment on every key) and run everywhere.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import REPO, SNAKEMAKE

PROFILE = REPO / "profiles" / "slurm"
PROFILE_FILE = PROFILE / "config.v8+.yaml"
MICRO_CONFIG = REPO / "config" / "micro.yaml"
MICRO_SHEET = REPO / "config" / "models" / "micro.tsv"
SLURM_CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# Written by filterlens tests/workflow/test_slurm.py; removed when the test ends."
PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
BINARIES = ["slurmctld", "slurmd", "munged", "sbatch", "squeue", "scontrol", "sinfo", "srun"]
TARGET = "results/tables/models.tsv"
# A reduction job too: Dask inside a SLURM job must size itself from that job's resources.
SUMMARIES = [f"results/summaries/{model}/layers.tsv" for model in ("micro_normal", "micro_robust")]
# The only things overridden on the command line: the local workflow profile (profiles/default
# is picked up automatically and would override this profile's keys) and the plugin's first
# status check, 40 s by default; a short wait keeps the test near a minute. The test cluster's
# MinJobAge (300 s) is far above 3 x this wait, so the profile's squeue status command is kept.
OVERRIDES = ["--workflow-profile", "none", "--slurm-init-seconds-before-status-checks", "3"]
# The SLURM jobs behind TARGET and SUMMARIES on the micro config: the plugin's job comment of each.
EXPECTED_JOBS = {
    "rule_coloured_digits",
    *(f"rule_{rule}_wildcards_{model}"
      for rule in ("train_minizoo", "evaluate_model", "extract_filters", "summarize_model")
      for model in ("micro_normal", "micro_robust")),
    "rule_model_table",
}
RUN_TIMEOUT_S = 600


# ---------------------------------------------------------------------------------------------
# The cluster
# ---------------------------------------------------------------------------------------------


def _skip_unless_slurm_can_run() -> None:
    """Skip (with the reason) unless this machine can host a throw-away SLURM cluster."""
    if not sys.platform.startswith("linux"):
        pytest.skip(f"SLURM test needs Linux (this is {sys.platform})")
    if os.geteuid() != 0:
        pytest.skip("SLURM test needs root: it installs packages, writes /etc/slurm/slurm.conf and runs slurmd")
    if SLURM_CONF.exists():
        conf = SLURM_CONF.read_text(errors="replace")
        if MARKER not in conf:
            pytest.skip(f"{SLURM_CONF} belongs to a real SLURM installation; not overwriting it")
        owner = re.search(r"^StateSaveLocation=(\S+)/state$", conf, flags=re.M)
        if owner and Path(owner.group(1)).exists():
            pytest.skip(f"another run of this test is using {SLURM_CONF} (state in {owner.group(1)})")
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if not missing:
        return
    if shutil.which("apt-get") is None:
        pytest.skip(f"SLURM test needs apt-get to install {' '.join(PACKAGES)} (missing: {' '.join(missing)})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    result = subprocess.run(install, capture_output=True, text=True, env=env, timeout=600)
    if result.returncode != 0:  # a stale package list: update once and retry
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, text=True, env=env, timeout=600)
        result = subprocess.run(install, capture_output=True, text=True, env=env, timeout=600)
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if result.returncode != 0 or missing:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        pytest.skip(f"could not install {' '.join(PACKAGES)} with apt-get: {' | '.join(tail)}")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Cluster:
    """munged, slurmctld and slurmd on localhost, all state under one temporary directory."""

    def __init__(self) -> None:
        # munged wants every directory above its socket to be searchable by all.
        self.root = Path(tempfile.mkdtemp(prefix="filterlens-slurm-", dir="/tmp"))
        self.root.chmod(0o755)
        self.processes: dict[str, subprocess.Popen] = {}
        self.wrote_conf = False

    @property
    def ctld_log(self) -> Path:
        return self.root / "slurmctld.log"

    def logs(self) -> str:
        names = ["munged.log", "slurmctld.log", "slurmd.log", "munged.out", "slurmctld.out", "slurmd.out"]
        return "\n".join(f"--- {name}\n{_tail(self.root / name)}" for name in names)

    def _spawn(self, name: str, command: list[str]) -> None:
        with open(self.root / f"{name}.out", "w") as out:
            self.processes[name] = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=self.root)

    def _wait_for(self, what: str, condition, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            dead = [name for name, p in self.processes.items() if p.poll() is not None]
            if dead:
                break
            time.sleep(0.25)
        raise RuntimeError(f"SLURM test cluster: {what} did not happen (exited: {dead})\n{self.logs()}")

    def start(self) -> None:
        key = self.root / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        socket_path = self.root / "munge.socket"
        for sub in ("state", "spool"):
            (self.root / sub).mkdir()
        node = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
        ctld_port, slurmd_port = _free_ports(2)
        host = socket.gethostname().split(".")[0]
        SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SLURM_CONF.write_text(
            f"""{MARKER}
ClusterName=filterlens-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={socket_path}
SlurmUser=root
SlurmdUser=root
StateSaveLocation={self.root}/state
SlurmdSpoolDir={self.root}/spool
SlurmctldPidFile={self.root}/slurmctld.pid
SlurmdPidFile={self.root}/slurmd.pid
SlurmctldLogFile={self.root}/slurmctld.log
SlurmdLogFile={self.root}/slurmd.log
# No systemd, no cgroups: plain process tracking, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# No slurmdbd: sacct does not work here, as on clusters without accounting.
AccountingStorageType=accounting_storage/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Finished jobs stay visible to squeue/scontrol this long (>= 3 x the plugin's first wait).
MinJobAge=300
ReturnToService=2
# Without it every job claims the whole node's memory and jobs run one at a time.
DefMemPerCPU=1000
{node} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
        )
        self.wrote_conf = True
        munge_args = [
            f"--socket={socket_path}",
            f"--key-file={key}",
            f"--pid-file={self.root}/munged.pid",
            f"--seed-file={self.root}/munged.seed",
            f"--log-file={self.root}/munged.log",
        ]
        self._spawn("munged", ["munged", "--foreground", *munge_args])
        self._wait_for("munged's socket", socket_path.exists)
        self._spawn("slurmctld", ["slurmctld", "-D", "-i"])
        self._spawn("slurmd", ["slurmd", "-D"])
        self._wait_for("the node becoming idle", lambda: self.sinfo_state() == "idle")

    def sinfo_state(self) -> str:
        result = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else ""

    def jobs(self) -> dict[str, dict[str, str]]:
        """SLURM's own record of every job it still knows (finished ones for MinJobAge seconds)."""
        out = subprocess.run(["scontrol", "show", "job", "--oneliner"], capture_output=True, text=True).stdout
        records = {}
        for line in out.splitlines():
            fields = dict(re.findall(r"(\w[\w/:]*)=(\S*)", line))
            if "JobId" in fields:
                records[fields["JobId"]] = fields
        return records

    def stop(self) -> None:
        try:
            queued = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, timeout=10)
            ids = queued.stdout.split()
            if ids:
                subprocess.run(["scancel", *ids], capture_output=True, timeout=10)
                time.sleep(2)
        except (OSError, subprocess.SubprocessError):
            pass
        for name in ("slurmd", "slurmctld", "munged"):
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.wrote_conf and SLURM_CONF.exists() and MARKER in SLURM_CONF.read_text(errors="replace"):
            SLURM_CONF.unlink()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def slurm_cluster():
    _skip_unless_slurm_can_run()
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def run_with_profile(workdir: Path, targets: str | list[str], *args: str) -> subprocess.CompletedProcess:
    """snakemake --profile profiles/slurm in workdir, killed (process group) after RUN_TIMEOUT_S."""
    command = [
        str(SNAKEMAKE), *([targets] if isinstance(targets, str) else targets), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--profile", str(PROFILE), *OVERRIDES, *args,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
    env["PYTHONWARNINGS"] = "ignore"
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        output, _ = process.communicate()
        raise AssertionError(f"snakemake on SLURM did not finish in {RUN_TIMEOUT_S} s:\n{output[-5000:]}")
    (workdir / "snakemake-slurm.out").write_text(output)  # the whole output, for debugging
    return subprocess.CompletedProcess(command, process.returncode, output, "")


def failed_job_logs(workdir: Path) -> str:
    """The tails of the SLURM logs the plugin kept (those of failed jobs)."""
    logs = sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    return "\n".join(f"--- {log}\n{_tail(log, 40)}" for log in logs)


def submitted_jobs(output: str) -> dict[str, str]:
    """SLURM job id -> Snakemake job id, from the plugin's submission messages."""
    pattern = r"Job (\d+) has been submitted with SLURM jobid (\d+)"
    return {slurm: snakemake for snakemake, slurm in re.findall(pattern, output)}


@pytest.fixture(scope="module")
def slurm_run(micro_run, slurm_cluster, tmp_path_factory):
    """The micro config through the SLURM profile (after the local run, which would compete for CPUs)."""
    workdir = tmp_path_factory.mktemp("micro_slurm")
    started = time.monotonic()
    # Two threads for the summaries (rules/summarize.smk gives one): the test below sees them
    # arrive through SLURM.
    result = run_with_profile(workdir, [TARGET, *SUMMARIES], "--configfile", str(MICRO_CONFIG),
                              "--set-threads", "summarize_model=2")
    seconds = time.monotonic() - started
    assert result.returncode == 0, (
        f"snakemake on SLURM failed ({result.returncode}):\n{result.stdout[-6000:]}\n"
        f"SLURM logs of failed jobs:\n{failed_job_logs(workdir)}"
    )
    print(f"\nmicro config on SLURM: {seconds:.0f} s")
    return workdir, result.stdout


# ---------------------------------------------------------------------------------------------
# The cluster tests
# ---------------------------------------------------------------------------------------------


@pytest.mark.slurm
def test_every_job_ran_as_a_completed_slurm_job(slurm_cluster, slurm_run):
    _, output = slurm_run
    submitted = submitted_jobs(output)
    records = slurm_cluster.jobs()
    assert submitted and set(submitted) <= set(records), f"submitted {submitted}, SLURM knows {sorted(records)}"
    ours = {job_id: records[job_id] for job_id in submitted}
    assert {r["Comment"] for r in ours.values()} >= EXPECTED_JOBS
    assert len(ours) == len({r["Comment"] for r in ours.values()}), "a job ran twice"
    log = slurm_cluster.ctld_log.read_text(errors="replace")
    for job_id, record in ours.items():
        assert record["JobState"] == "COMPLETED" and record["ExitCode"] == "0:0", record
        # The profile's job name prefix: the shipped profile is what ran.
        assert record["JobName"].startswith("filterlens_"), record
        assert f"_job_complete: JobId={job_id} WEXITSTATUS 0" in log
    # Only the target rule `all` (or rules declared local) may run outside SLURM.
    local_rules = set(re.findall(r"^localrule (\w+):", output, flags=re.M))
    assert "model_table" not in local_rules and "train_minizoo" not in local_rules


def _arrays(group, prefix=""):
    for name, array in group.arrays():
        yield prefix + name, array
    for name, sub in group.groups():
        yield from _arrays(sub, f"{prefix}{name}/")


@pytest.mark.slurm
def test_results_equal_a_local_run(micro_run, slurm_run):
    import zarr

    workdir, _ = slurm_run
    for table in (TARGET, *SUMMARIES):
        assert (workdir / table).read_text() == (micro_run / table).read_text(), table
    stores = sorted(p.name for p in (micro_run / "results" / "filters").glob("*.zarr"))
    assert stores == sorted(p.name for p in (workdir / "results" / "filters").glob("*.zarr")) and stores
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Snakemake's .snakemake_timestamp inside directory outputs
        for store in stores:
            local = zarr.open_group(str(micro_run / "results" / "filters" / store), mode="r")
            remote = zarr.open_group(str(workdir / "results" / "filters" / store), mode="r")
            local_arrays, remote_arrays = dict(_arrays(local)), dict(_arrays(remote))
            assert sorted(local_arrays) == sorted(remote_arrays)
            for name, array in local_arrays.items():
                np.testing.assert_array_equal(remote_arrays[name][:], array[:], err_msg=f"{store}/{name}")
            # The layer table, and the checkpoint's hash: the trained weights are bit-identical.
            assert dict(remote.attrs) == dict(local.attrs), store


@pytest.mark.slurm
def test_dask_in_a_slurm_job_uses_that_jobs_cpus_and_memory(slurm_cluster, slurm_run):
    """The summary job got its threads (--set-threads) and mem_mb from SLURM (--cpus-per-task, --mem),
    and its Dask pass used those threads and sized its segments from that memory."""
    from filterlens.reduce.streaming import rows_per_segment

    workdir, output = slurm_run
    records = slurm_cluster.jobs()
    for model in ("micro_normal", "micro_robust"):
        [record] = [records[j] for j in submitted_jobs(output)
                    if records[j]["Comment"] == f"rule_summarize_model_wildcards_{model}"]
        cpus, mem_mb = int(record["NumCPUs"]), int(record["MinMemoryNode"].rstrip("M"))
        assert (cpus, mem_mb) == (2, 2000), record  # --set-threads summarize_model=2; the rule's mem_mb
        log = (workdir / "logs" / "summarize" / f"{model}.log").read_text()
        assert f"{cpus} threads, segments of at most {rows_per_segment(mem_mb, cpus)} rows" in log, log


@pytest.mark.slurm
def test_a_failing_job_is_reported_as_failed_with_a_nonzero_exit(slurm_cluster, slurm_run, tmp_path):
    workdir, _ = slurm_run
    # A WRN of depth 11 fails inside the job: depth must be 6n + 4. The sheet check refuses it
    # before any job, so the check's marker (filterlens.models.sheet_checks) is written beforehand, as if
    # the row had passed: the job is then submitted and fails on the cluster.
    header, *rows = MICRO_SHEET.read_text().splitlines()
    columns = header.split("\t")
    row = dict(zip(columns, next(r for r in rows if r.startswith("micro_normal\t")).split("\t")))
    row.update(model_id="micro_bad_depth", arch_kwargs='{"depth": 11, "widen_factor": 1}')
    sheet = tmp_path / "bad_depth.tsv"
    # The micro sheet plus that row: the rest of the workflow still parses (figures want a pair).
    sheet.write_text("\n".join([header, *rows, "\t".join(row[c] for c in columns)]) + "\n")
    from filterlens.models.sheet_checks import fingerprint

    markers = workdir / ".snakemake" / "filterlens" / "sheet-checks"
    markers.mkdir(parents=True, exist_ok=True)
    (markers / f"{fingerprint(sheet)}.json").write_text("{}")

    # In the finished run's directory: the dataset exists, so only the failing job runs; without
    # the profile's retry, which would only run the same failure again.
    started = time.monotonic()
    result = run_with_profile(workdir, "data/models/micro_bad_depth.pt", "--retries", "0",
                              "--configfile", str(MICRO_CONFIG), "--config", f"sheet={sheet}")
    print(f"\nfailing job on SLURM: {time.monotonic() - started:.0f} s")
    assert result.returncode != 0, result.stdout[-5000:]
    assert "Error in rule train_minizoo" in result.stdout
    submitted = submitted_jobs(result.stdout)
    records = slurm_cluster.jobs()
    failed = [records[j] for j in submitted if records[j]["Comment"] == "rule_train_minizoo_wildcards_micro_bad_depth"]
    assert len(failed) == len(submitted) == 1, (submitted, failed)
    for record in failed:
        assert record["JobState"] == "FAILED" and record["ExitCode"] == "1:0", record
        assert f"SLURM-job '{record['JobId']}' failed, SLURM status is: 'FAILED'" in result.stdout
        # Failed jobs' SLURM logs are kept and hold the job's traceback.
        (log,) = (workdir / ".snakemake" / "slurm_logs").rglob(f"{record['JobId']}.log")
        assert "AssertionError" in log.read_text()
    assert not (workdir / "data" / "models" / "micro_bad_depth.pt").exists()


@pytest.mark.slurm
def test_a_batch_of_models_is_one_slurm_job(slurm_cluster, slurm_run, tmp_path):
    """analysis.models_per_job 2: both micro models' summaries are one SLURM job (rule
    summarize_batch_0) with the rule's memory and twice its runtime, and write the same tables
    as their own jobs did."""
    workdir, _ = slurm_run
    batched = tmp_path / "batched"
    shutil.copytree(workdir, batched, symlinks=True)  # the stores and their records, not the summaries
    shutil.rmtree(batched / "results" / "summaries")
    config = tmp_path / "batches.yaml"
    config.write_text("analysis:\n  models_per_job: 2\n")
    result = run_with_profile(batched, SUMMARIES, "--configfile", str(MICRO_CONFIG), str(config))
    assert result.returncode == 0, f"{result.stdout[-5000:]}\n{failed_job_logs(batched)}"
    submitted = submitted_jobs(result.stdout)
    records = slurm_cluster.jobs()
    assert [records[j]["Comment"] for j in submitted] == ["rule_summarize_batch_0"], result.stdout[-3000:]
    (record,) = (records[j] for j in submitted)
    assert record["JobState"] == "COMPLETED" and record["MinMemoryNode"] == "2000M", record
    assert record["TimeLimit"] == "02:00:00", record  # runtime 60 min per model
    for table in SUMMARIES:
        assert (batched / table).read_text() == (workdir / table).read_text(), table


# ---------------------------------------------------------------------------------------------
# The profile itself (no cluster needed)
# ---------------------------------------------------------------------------------------------


def test_profile_options_exist_in_the_installed_slurm_plugin():
    from snakemake_executor_plugin_slurm import ExecutorSettings

    profile = yaml.safe_load(PROFILE_FILE.read_text())
    assert profile["executor"] == "slurm"
    settings = {f.name for f in dataclasses.fields(ExecutorSettings)}
    plugin_keys = [key for key in profile if key.startswith("slurm-")]
    assert plugin_keys
    for key in plugin_keys:
        assert key.removeprefix("slurm-").replace("-", "_") in settings, f"{key}: not a plugin option"
    assert profile["slurm-status-command"] in {"sacct", "squeue"}
    # Accounts and partitions live in this profile, GPUs for train_cifar in set-resources.
    assert profile["set-resources"]["train_cifar"]["gpu"] == 1
    assert set(profile["default-resources"]) >= {"mem_mb", "runtime"}


def test_every_profile_key_is_commented():
    lines = PROFILE_FILE.read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^\s*[\w-]+:", line) and not re.match(r"^\s*#", line):
            above = lines[number - 1].strip() if number else ""
            commented = "#" in line or above.startswith("#")
            assert commented, f"{PROFILE_FILE.name}:{number + 1}: {line.strip()} has no comment"
