using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Backprop.Distributed;

/// <summary>
/// A small P/Invoke layer over Open MPI 4 (libmpi.so.40): init with thread support, rank and size,
/// barrier, broadcast, all-reduce (blocking and non-blocking), wait/test, abort and finalize. Open
/// MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) are the addresses of exported globals
/// (ompi_mpi_comm_world, ompi_mpi_float, ompi_mpi_op_sum, ...), found with
/// <see cref="NativeLibrary.GetExport"/>. Functions are called through unmanaged function pointers
/// looked up once, so a missing library is one clear error at <see cref="Load()"/>, not a
/// DllNotFoundException at the first call.
/// </summary>
public static unsafe class Mpi
{
    /// <summary>MPI_THREAD_SINGLE .. MPI_THREAD_MULTIPLE, as Open MPI numbers them.</summary>
    public enum ThreadLevel { Single = 0, Funneled = 1, Serialized = 2, Multiple = 3 }

    private static nint _lib;
    internal static nint CommWorld, Float, Double, Byte, OpSum, OpMax;
    private static readonly nint InPlace = 1; // Open MPI: #define MPI_IN_PLACE ((void *) 1)

    private static delegate* unmanaged<int*, byte***, int, int*, int> _initThread;
    private static delegate* unmanaged<int*, int> _initialized, _finalized;
    private static delegate* unmanaged<int> _finalize;
    private static delegate* unmanaged<nint, int*, int> _commRank, _commSize;
    private static delegate* unmanaged<nint, nint*, int> _ibarrier;
    private static delegate* unmanaged<void*, int, nint, int, nint, nint*, int> _ibcast;
    private static delegate* unmanaged<void*, void*, int, nint, nint, nint, int> _allreduce;
    private static delegate* unmanaged<void*, void*, int, nint, nint, nint, nint*, int> _iallreduce;
    private static delegate* unmanaged<nint*, void*, int> _wait;
    private static delegate* unmanaged<nint*, int*, void*, int> _test;
    private static delegate* unmanaged<nint, int, int> _abort;

    /// <summary>The library names tried, in order (BACKPROP_LIBMPI first when set).</summary>
    public static IEnumerable<string> LibraryNames()
    {
        if (Environment.GetEnvironmentVariable("BACKPROP_LIBMPI") is { Length: > 0 } env) yield return env;
        yield return "libmpi.so.40";
        yield return "libmpi.so";
    }

    [DllImport("libc", EntryPoint = "dlopen")]
    private static extern nint DlOpen(string file, int mode);

    private const int RtldNow = 2, RtldGlobal = 0x100;

    /// <summary>Whether libmpi was found and loaded.</summary>
    public static bool IsLoaded => _lib != 0;

    /// <summary>
    /// Loads libmpi and looks up every function and handle used; an <see cref="MpiException"/> with
    /// one line says what is missing (the library, or a symbol of another MPI than Open MPI 4).
    /// </summary>
    public static void Load() => Load(LibraryNames());

    internal static void Load(IEnumerable<string> names)
    {
        if (_lib != 0) return;
        nint lib = 0;
        foreach (var name in names)
        {
            // RTLD_GLOBAL: Open MPI's plugins (mca_*.so) resolve symbols of libmpi, so it must be global.
            try { lib = DlOpen(name, RtldNow | RtldGlobal); }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { lib = 0; }
            if (lib == 0) NativeLibrary.TryLoad(name, out lib);
            if (lib != 0) break;
        }
        if (lib == 0)
            throw new MpiException("--distributed: cannot load Open MPI's libmpi (libmpi.so.40); install it (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev) or set BACKPROP_LIBMPI to the library's path.");
        nint Sym(string name) => NativeLibrary.TryGetExport(lib, name, out nint p) ? p
            : throw new MpiException($"--distributed: the loaded libmpi has no symbol '{name}'; Backprop needs Open MPI 4 (libmpi.so.40), not another MPI.");
        _initThread = (delegate* unmanaged<int*, byte***, int, int*, int>)Sym("MPI_Init_thread");
        _initialized = (delegate* unmanaged<int*, int>)Sym("MPI_Initialized");
        _finalized = (delegate* unmanaged<int*, int>)Sym("MPI_Finalized");
        _finalize = (delegate* unmanaged<int>)Sym("MPI_Finalize");
        _commRank = (delegate* unmanaged<nint, int*, int>)Sym("MPI_Comm_rank");
        _commSize = (delegate* unmanaged<nint, int*, int>)Sym("MPI_Comm_size");
        _ibarrier = (delegate* unmanaged<nint, nint*, int>)Sym("MPI_Ibarrier");
        _ibcast = (delegate* unmanaged<void*, int, nint, int, nint, nint*, int>)Sym("MPI_Ibcast");
        _allreduce = (delegate* unmanaged<void*, void*, int, nint, nint, nint, int>)Sym("MPI_Allreduce");
        _iallreduce = (delegate* unmanaged<void*, void*, int, nint, nint, nint, nint*, int>)Sym("MPI_Iallreduce");
        _wait = (delegate* unmanaged<nint*, void*, int>)Sym("MPI_Wait");
        _test = (delegate* unmanaged<nint*, int*, void*, int>)Sym("MPI_Test");
        _abort = (delegate* unmanaged<nint, int, int>)Sym("MPI_Abort");
        CommWorld = Sym("ompi_mpi_comm_world");
        Float = Sym("ompi_mpi_float");
        Double = Sym("ompi_mpi_double");
        Byte = Sym("ompi_mpi_byte");
        OpSum = Sym("ompi_mpi_op_sum");
        OpMax = Sym("ompi_mpi_op_max");
        _lib = lib;
    }

    /// <summary>
    /// Whether this process was started by mpirun (or another Open MPI/PMIx launcher): the launcher
    /// sets OMPI_COMM_WORLD_SIZE (and PMIX_RANK).
    /// </summary>
    public static bool StartedByLauncher =>
        Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is { Length: > 0 } ||
        Environment.GetEnvironmentVariable("PMIX_RANK") is { Length: > 0 };

    /// <summary>The ranks on this machine, as the launcher says (OMPI_COMM_WORLD_LOCAL_SIZE), or 1.</summary>
    public static int LocalSize =>
        int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_LOCAL_SIZE"), out int n) && n > 0 ? n : 1;

    /// <summary>Whether MPI_Init has run and MPI_Finalize has not.</summary>
    public static bool IsInitialized
    {
        get
        {
            if (_lib == 0) return false;
            int init, fin;
            _initialized(&init);
            _finalized(&fin);
            return init != 0 && fin == 0;
        }
    }

    /// <summary>
    /// MPI_Init_thread asking for <paramref name="required"/>; returns the level provided. Refuses
    /// (one line) a process that mpirun did not start.
    /// </summary>
    public static ThreadLevel Init(ThreadLevel required = ThreadLevel.Multiple)
    {
        if (!StartedByLauncher)
            throw new MpiException("--distributed: this process was not started by mpirun (OMPI_COMM_WORLD_SIZE is not set); run: mpirun -np N backprop train ... --distributed");
        Load();
        int provided;
        Check(_initThread(null, null, (int)required, &provided), "MPI_Init_thread");
        return (ThreadLevel)provided;
    }

    /// <summary>This process's rank in MPI_COMM_WORLD.</summary>
    public static int Rank { get { int r; Check(_commRank(CommWorld, &r), "MPI_Comm_rank"); return r; } }

    /// <summary>The number of processes in MPI_COMM_WORLD.</summary>
    public static int Size { get { int s; Check(_commSize(CommWorld, &s), "MPI_Comm_size"); return s; } }

    /// <summary>MPI_Ibarrier on MPI_COMM_WORLD.</summary>
    public static nint StartBarrier() { nint req; Check(_ibarrier(CommWorld, &req), "MPI_Ibarrier"); return req; }

    /// <summary>MPI_Ibcast of <paramref name="count"/> elements of <paramref name="type"/> at <paramref name="buffer"/> from <paramref name="root"/>.</summary>
    public static nint StartBroadcast(void* buffer, int count, nint type, int root)
    {
        nint req;
        Check(_ibcast(buffer, count, type, root, CommWorld, &req), "MPI_Ibcast");
        return req;
    }

    /// <summary>In-place MPI_Allreduce (blocking).</summary>
    public static void AllReduce(void* buffer, int count, nint type, nint op) =>
        Check(_allreduce((void*)InPlace, buffer, count, type, op, CommWorld), "MPI_Allreduce");

    /// <summary>In-place MPI_Iallreduce; the buffer must stay put (pinned) until the request completes.</summary>
    public static nint StartAllReduce(void* buffer, int count, nint type, nint op)
    {
        nint req;
        Check(_iallreduce((void*)InPlace, buffer, count, type, op, CommWorld, &req), "MPI_Iallreduce");
        return req;
    }

    /// <summary>MPI_Test: whether the request completed (it is then freed and set to MPI_REQUEST_NULL).</summary>
    public static bool Test(ref nint request)
    {
        int flag;
        fixed (nint* r = &request) Check(_test(r, &flag, null), "MPI_Test");
        return flag != 0;
    }

    /// <summary>MPI_Wait (blocking, no time limit).</summary>
    public static void Wait(ref nint request)
    {
        fixed (nint* r = &request) Check(_wait(r, null), "MPI_Wait");
    }

    /// <summary>MPI_Abort on MPI_COMM_WORLD: ends every rank of the job (mpirun reports the rank and code).</summary>
    public static void Abort(int code)
    {
        if (_lib != 0) _abort(CommWorld, code);
        Environment.Exit(code);
    }

    /// <summary>MPI_Finalize, unless already done.</summary>
    public static void Shutdown()
    {
        if (!IsInitialized) return;
        Check(_finalize(), "MPI_Finalize");
    }

    [StackTraceHidden]
    private static void Check(int rc, string call)
    {
        if (rc != 0) throw new MpiException($"{call} failed with MPI error code {rc}.");
    }
}
