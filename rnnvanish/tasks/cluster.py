"""A sweep's runs on a Dask cluster: `dask_executor(address)`, the concurrent.futures face of
a `dask.distributed` client, and what a lost worker looks like on each executor.

    with dask_executor("tcp://host:8786") as (executor, slots):
        results = run_sweep(specs, executor=executor)

The runs travel as plain dicts and come back as result dicts to this process, which writes
the sweep folder: the results gather in one place wherever the runs ran. Every worker needs
rnnvanish installed (the same version: `run_one` is imported there by name).

Failures, and what the sweep does with them:
  - no `distributed` package: RnnvanishError naming the extra to install;
  - an address of an unknown scheme, or a scheduler that does not answer within
    CONNECT_TIMEOUT seconds: RnnvanishError (the command prints one line, exits 2) before
    the sweep folder is touched;
  - a worker that dies while it runs a job: the scheduler gives the job to another worker, up
    to its `distributed.scheduler.allowed-failures` times (3 by default, a scheduler setting);
    past that the job's future raises KilledWorker, one of `lost_worker_errors()`, and the
    sweep records that run as failed (`failed_result`) and goes on with the others.
    `retries` (re-running a job that raised) stays 0: a run is seeded and deterministic, so an
    exception it raised would be raised again.
"""
import concurrent.futures.process
import contextlib
import sys

from ..errors import RnnvanishError

CONNECT_TIMEOUT = 10.0      # seconds to reach the scheduler before giving up
INSTALL = 'pip install "rnnvanish[dask]"'


def lost_worker_errors():
    """The exceptions a future raises when the process running its job died, not the job:
    a broken local process pool, and KilledWorker where Dask is in use (imported: a sweep
    on the process pool does not pay for importing it)."""
    errors = [concurrent.futures.process.BrokenProcessPool]
    distributed = sys.modules.get("distributed")
    if distributed is not None:
        errors.append(distributed.KilledWorker)
    return tuple(errors)


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise RnnvanishError(f"--scheduler runs the sweep on a Dask cluster and needs Dask's distributed "
                             f"package: {INSTALL}") from None
    return distributed


def _check_address(address):
    """An address Dask can dial: `tcp://host:port` (or `host:port`, tcp), tls://, ws://, ..."""
    from distributed.comm.addressing import parse_address
    from distributed.comm.registry import backends
    try:
        scheme, location = parse_address(address)
    except (TypeError, ValueError) as err:
        raise RnnvanishError(f"--scheduler {address!r} is not a scheduler address ({err})") from None
    if scheme not in backends or not location:
        raise RnnvanishError(f"--scheduler {address!r} is not a scheduler address like tcp://host:8786 "
                             f"(schemes: {', '.join(sorted(backends))})")


@contextlib.contextmanager
def dask_client(address, timeout=None):
    """A `distributed.Client` connected to the scheduler at `address`, closed at the end."""
    distributed = _import_distributed()
    _check_address(address)
    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    try:
        client = distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as err:
        raise RnnvanishError(f"cannot reach the Dask scheduler at {address} within {timeout:g} s "
                             f"({type(err).__name__}: {err})") from None
    try:
        yield client
    finally:
        client.close()


@contextlib.contextmanager
def dask_executor(address, timeout=None):
    """(executor, slots): the cluster at `address` as a concurrent.futures.Executor
    (`Client.get_executor`) and how many jobs it runs at once now (its workers' threads).

    pure=False: each submission is a job of its own, never a cached result of an earlier one."""
    with dask_client(address, timeout) as client:
        yield client.get_executor(pure=False, retries=0), sum(client.nthreads().values())
