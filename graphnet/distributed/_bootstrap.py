"""What each rank runs under graphnet.distributed.run: the user's script, with RANK, WORLD_SIZE, LOCAL_RANK and
LOCAL_WORLD_SIZE set before it starts (as torchrun sets them: scripts read LOCAL_RANK before init_process_group), and
an uncaught exception printed with the rank and turned into MPI_Abort so the other ranks stop instead of hanging in
their next collective."""
import runpy
import sys
import traceback


def main(argv):
    module = argv[:1] == ["-m"]
    target = argv[1] if module else argv[0]
    sys.argv = argv[1:] if module else argv
    from mpi4py import MPI

    from .c10d import set_environment
    set_environment(MPI.COMM_WORLD)
    try:
        if module:
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(target, run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (None, 0):
            _abort(f"exited with status {exc.code}", exc.code if isinstance(exc.code, int) else 1)
        raise
    except BaseException:  # noqa: BLE001  (any failure must abort the whole job)
        _abort("failed:\n" + traceback.format_exc(), 1)


def _abort(why, code):
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    sys.stderr.write(f"graphnet.distributed.run: rank {comm.Get_rank()} (of {comm.Get_size()}) {why}\n")
    sys.stderr.flush()
    comm.Abort(code)


if __name__ == "__main__":
    main(sys.argv[1:])
