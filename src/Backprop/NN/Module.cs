using System.Collections.Concurrent;
using System.Reflection;
using System.Text;

namespace Backprop.NN;

/// <summary>
/// Base class of layers and models. Parameters (<see cref="Parameter"/> fields or properties) and
/// submodules (<see cref="Module"/> fields or properties, arrays or lists of modules) are found
/// automatically; their names, converted to snake_case, give stable dotted paths such as
/// <c>layers.0.weight</c>. Use <see cref="RegisterModule{T}"/>, <see cref="RegisterParameter"/> and
/// <see cref="RegisterBuffer"/> for names chosen explicitly or for non-parameter state.
/// </summary>
public abstract class Module
{
    private static readonly ConcurrentDictionary<Type, FieldInfo[]> FieldCache = new();
    private readonly List<(string Name, Module Module)> _registeredModules = [];
    private readonly List<(string Name, Parameter Param)> _registeredParams = [];
    private readonly List<(string Name, Func<Tensor> Get, Action<Tensor> Set)> _buffers = [];

    /// <summary>True in training mode (dropout active), false in evaluation mode.</summary>
    public bool Training { get; private set; } = true;

    /// <summary>Applies the module to one input. Modules with other signatures provide their own overloads.</summary>
    public virtual Tensor Forward(Tensor input) =>
        throw new NotSupportedException($"{GetType().Name} does not take a single tensor input; call its own Forward overload.");

    private List<Func<Module, Tensor, Tensor?>>? _forwardPreHooks;
    private List<Func<Module, Tensor, Tensor, Tensor?>>? _forwardHooks;
    private List<Action<Module, Tensor>>? _backwardHooks;

    /// <summary>True when hooks are registered on this module (a container then calls it on its own, unfused).</summary>
    public bool HasHooks => _forwardPreHooks is { Count: > 0 } || _forwardHooks is { Count: > 0 } || _backwardHooks is { Count: > 0 };

    /// <summary>
    /// Applies the module through its hooks: forward pre-hooks (which may replace the input),
    /// <see cref="Forward(Tensor)"/>, forward hooks (which may replace the output), and a gradient hook
    /// on the output for the backward hooks. Containers such as <see cref="Sequential"/> call their
    /// children this way, so hooks on any layer of a model fire when the model runs. With no hooks it is
    /// exactly <see cref="Forward(Tensor)"/>.
    /// </summary>
    public Tensor Call(Tensor input)
    {
        if (!HasHooks) return Forward(input);
        if (_forwardPreHooks != null)
            foreach (var h in _forwardPreHooks.ToArray())
                if (h(this, input) is Tensor replaced) input = replaced;
        var output = Forward(input);
        if (_forwardHooks != null)
            foreach (var h in _forwardHooks.ToArray())
                if (h(this, input, output) is Tensor replaced) output = replaced;
        if (_backwardHooks is { Count: > 0 } && output.GradFn != null)
        {
            var hooks = _backwardHooks.ToArray();
            output.RegisterHook(g =>
            {
                foreach (var h in hooks) h(this, g);
                return null;
            });
        }
        return output;
    }

    /// <summary>Runs <paramref name="hook"/>(module, input) before each <see cref="Call"/>; a non-null result replaces the input. Dispose the result to remove it.</summary>
    public IDisposable RegisterForwardPreHook(Func<Module, Tensor, Tensor?> hook) => AddHook(ref _forwardPreHooks, hook);

    /// <summary>Runs <paramref name="hook"/>(module, input, output) after each <see cref="Call"/>; a non-null result replaces the output. Dispose the result to remove it.</summary>
    public IDisposable RegisterForwardHook(Func<Module, Tensor, Tensor, Tensor?> hook) => AddHook(ref _forwardHooks, hook);

    /// <summary>Runs <paramref name="hook"/>(module, input, output) after each <see cref="Call"/> (an observer: activations for pictures). Dispose the result to remove it.</summary>
    public IDisposable RegisterForwardHook(Action<Module, Tensor, Tensor> hook)
    {
        ArgumentNullException.ThrowIfNull(hook);
        return RegisterForwardHook((m, i, o) => { hook(m, i, o); return null; });
    }

    /// <summary>
    /// Runs <paramref name="hook"/>(module, dL/doutput) during backward, when the gradient of the output of a
    /// <see cref="Call"/> is complete (before it flows into the module). The gradient is a temporary of the
    /// pass: copy what you keep. Dispose the result to remove it.
    /// </summary>
    public IDisposable RegisterBackwardHook(Action<Module, Tensor> hook) => AddHook(ref _backwardHooks, hook);

    private static IDisposable AddHook<T>(ref List<T>? list, T hook) where T : Delegate
    {
        ArgumentNullException.ThrowIfNull(hook);
        var l = list ??= [];
        l.Add(hook);
        return new HookHandle(() => l.Remove(hook));
    }

    /// <summary>Registers a submodule under an explicit name (for modules not held in a field).</summary>
    protected T RegisterModule<T>(string name, T module) where T : Module
    {
        CheckName(name);
        _registeredModules.Add((name, module));
        return module;
    }

    /// <summary>Submodules registered with <see cref="RegisterModule{T}"/>, in order.</summary>
    protected IReadOnlyList<(string Name, Module Module)> RegisteredModules => _registeredModules;

    /// <summary>Registers a parameter under an explicit name.</summary>
    protected Parameter RegisterParameter(string name, Parameter parameter)
    {
        CheckName(name);
        _registeredParams.Add((name, parameter));
        return parameter;
    }

    /// <summary>Registers non-learnable state saved in the state dict (e.g. running statistics), read and written through accessors.</summary>
    protected void RegisterBuffer(string name, Func<Tensor> get, Action<Tensor> set)
    {
        CheckName(name);
        _buffers.Add((name, get, set));
    }

    private static void CheckName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.'))
            throw new ArgumentException($"Module: invalid name '{name}': names must be non-empty and contain no '.'.");
    }

    private static FieldInfo[] FieldsOf(Type t) => FieldCache.GetOrAdd(t, static type =>
    {
        var chain = new List<Type>();
        for (var c = type; c != null && c != typeof(Module); c = c.BaseType) chain.Add(c);
        chain.Reverse(); // base-class fields first, each class in declaration order
        return chain.SelectMany(c => c.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Where(f => typeof(Parameter).IsAssignableFrom(f.FieldType) || typeof(Module).IsAssignableFrom(f.FieldType) || IsModuleCollection(f.FieldType))
            .ToArray();
    });

    private static bool IsModuleCollection(Type t) =>
        t != typeof(string) && typeof(System.Collections.IEnumerable).IsAssignableFrom(t) &&
        (t.IsArray ? typeof(Module).IsAssignableFrom(t.GetElementType()) :
            t.IsGenericType && t.GetGenericArguments().Length == 1 && typeof(Module).IsAssignableFrom(t.GetGenericArguments()[0]));

    /// <summary>The snake_case name for a field (auto-property backing fields use the property name).</summary>
    internal static string NameOf(FieldInfo f)
    {
        var n = f.Name;
        if (n.StartsWith('<')) n = n[1..n.IndexOf('>')];
        n = n.TrimStart('_');
        var sb = new StringBuilder();
        for (int i = 0; i < n.Length; i++)
        {
            char c = n[i];
            if (char.IsUpper(c))
            {
                if (i > 0 && (char.IsLower(n[i - 1]) || char.IsDigit(n[i - 1]) || (i + 1 < n.Length && char.IsLower(n[i + 1]) && char.IsUpper(n[i - 1]))))
                    sb.Append('_');
                sb.Append(char.ToLowerInvariant(c));
            }
            else sb.Append(c);
        }
        return sb.ToString();
    }

    /// <summary>Direct parameters of this module (not of submodules), with names.</summary>
    private IEnumerable<(string Name, Parameter Param)> OwnParameters()
    {
        foreach (var f in FieldsOf(GetType()))
            if (f.GetValue(this) is Parameter p) yield return (NameOf(f), p);
        foreach (var rp in _registeredParams) yield return rp;
    }

    /// <summary>Direct submodules with names.</summary>
    public IEnumerable<(string Name, Module Module)> NamedChildren()
    {
        foreach (var f in FieldsOf(GetType()))
        {
            var v = f.GetValue(this);
            if (v is Module m) yield return (NameOf(f), m);
            else if (v is System.Collections.IEnumerable list && v is not Module)
            {
                int i = 0;
                foreach (var item in list)
                {
                    if (item is Module mm) yield return ($"{NameOf(f)}.{i}", mm);
                    i++;
                }
            }
        }
        foreach (var rm in _registeredModules) yield return rm;
    }

    /// <summary>Direct submodules.</summary>
    public IEnumerable<Module> Children() => NamedChildren().Select(c => c.Module);

    /// <summary>This module and all its descendants with dotted names ("" for this one).</summary>
    public IEnumerable<(string Name, Module Module)> NamedModules(string prefix = "")
    {
        yield return (prefix, this);
        foreach (var (name, child) in NamedChildren())
            foreach (var sub in child.NamedModules(Join(prefix, name)))
                yield return sub;
    }

    private static string Join(string prefix, string name) => prefix.Length == 0 ? name : $"{prefix}.{name}";

    /// <summary>All parameters with stable dotted names, each parameter once (shared ones under their first name).</summary>
    public IEnumerable<(string Name, Parameter Param)> NamedParameters(string prefix = "")
    {
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var (mname, m) in NamedModules(prefix))
            foreach (var (pname, p) in m.OwnParameters())
                if (seen.Add(p)) yield return (Join(mname, pname), p);
    }

    /// <summary>All parameters (each once), in a stable order.</summary>
    public IEnumerable<Parameter> Parameters() => NamedParameters().Select(p => p.Param);

    /// <summary>All buffers with dotted names.</summary>
    public IEnumerable<(string Name, Tensor Buffer)> NamedBuffers()
    {
        foreach (var (mname, m) in NamedModules())
            foreach (var b in m._buffers)
                yield return (Join(mname, b.Name), b.Get());
    }

    /// <summary>Total number of parameter elements.</summary>
    public long NumParameters() => Parameters().Sum(p => (long)p.NumElements);

    /// <summary>Sets training (true) or evaluation (false) mode on this module and all descendants.</summary>
    public virtual Module Train(bool mode = true)
    {
        foreach (var (_, m) in NamedModules()) m.Training = mode;
        return this;
    }

    /// <summary>Evaluation mode (dropout off).</summary>
    public Module Eval() => Train(false);

    /// <summary>Zeroes all parameter gradients in place (or drops them with <paramref name="setToNone"/>).</summary>
    public void ZeroGrad(bool setToNone = false)
    {
        foreach (var p in Parameters())
        {
            if (p.Grad == null) continue;
            if (setToNone) p.Grad = null;
            else using (Tensor.NoGrad()) p.Grad.Zero_();
        }
    }

    /// <summary>Parameters and buffers by dotted name (the tensors themselves, not copies).</summary>
    public StateDict StateDict()
    {
        var sd = new StateDict();
        foreach (var (n, p) in NamedParameters()) sd.Add(n, p);
        foreach (var (n, b) in NamedBuffers()) sd.Add(n, b);
        return sd;
    }

    /// <summary>
    /// Copies values from <paramref name="state"/> into this module's parameters and buffers. With
    /// <paramref name="strict"/>, missing or unexpected keys are an error; a shape or dtype mismatch always is.
    /// Nothing is modified unless every entry checks out.
    /// </summary>
    public void LoadStateDict(StateDict state, bool strict = true)
    {
        var targets = new List<(string Name, Tensor Target, Action<Tensor>? Set)>();
        foreach (var (n, p) in NamedParameters()) targets.Add((n, p, null));
        foreach (var (mname, m) in NamedModules())
            foreach (var b in m._buffers) targets.Add((Join(mname, b.Name), b.Get(), b.Set));
        var errors = new List<string>();
        var known = new HashSet<string>(targets.Select(t => t.Name));
        if (strict)
        {
            var missing = targets.Where(t => !state.Tensors.ContainsKey(t.Name)).Select(t => t.Name).ToList();
            var unexpected = state.Keys.Where(k => !known.Contains(k)).ToList();
            if (missing.Count > 0) errors.Add($"missing keys: {string.Join(", ", missing)}");
            if (unexpected.Count > 0) errors.Add($"unexpected keys: {string.Join(", ", unexpected)}");
        }
        foreach (var (name, target, _) in targets)
        {
            if (!state.Tensors.TryGetValue(name, out var src)) continue;
            if (!src.Shape.Equals(target.Shape))
                errors.Add($"'{name}': expected shape {target.Shape}, found {src.Shape}");
            else if (src.DType != target.DType)
                errors.Add($"'{name}': expected dtype {target.DType.Name()}, found {src.DType.Name()}");
        }
        if (errors.Count > 0)
            throw new InvalidDataException($"LoadStateDict into {GetType().Name}: {string.Join("; ", errors)}.");
        using (Tensor.NoGrad())
            foreach (var (name, target, _) in targets)
                if (state.Tensors.TryGetValue(name, out var src) && !ReferenceEquals(src, target))
                    target.CopyFrom(src);
    }

    /// <summary>Converts every parameter and buffer to <paramref name="dtype"/> in place (e.g. Float64 for gradient checks).</summary>
    public Module To(DType dtype)
    {
        foreach (var (_, m) in NamedModules()) m.ConvertOwn(dtype);
        return this;
    }

    private void ConvertOwn(DType dtype)
    {
        foreach (var f in FieldsOf(GetType()))
            if (f.GetValue(this) is Parameter p && p.DType != dtype)
                f.SetValue(this, new Parameter(p.Detach().To(dtype), p.RequiresGrad));
        for (int i = 0; i < _registeredParams.Count; i++)
        {
            var (n, p) = _registeredParams[i];
            if (p.DType != dtype) _registeredParams[i] = (n, new Parameter(p.Detach().To(dtype), p.RequiresGrad));
        }
        foreach (var b in _buffers)
        {
            var t = b.Get();
            if (t.DType != dtype && t.DType.IsFloatingPoint()) b.Set(t.To(dtype));
        }
        OnConverted(dtype);
    }

    /// <summary>Called after parameters were replaced by <see cref="To"/>, for modules that cache them.</summary>
    protected virtual void OnConverted(DType dtype) { }

    /// <summary>A summary line for this module, e.g. "Linear(in=784, out=16, bias=True)".</summary>
    protected virtual string ExtraRepr() => "";

    /// <summary>The module tree, like PyTorch's printout.</summary>
    public override string ToString()
    {
        var children = NamedChildren().ToList();
        var head = $"{GetType().Name}({ExtraRepr()}";
        if (children.Count == 0) return head + ")";
        var sb = new StringBuilder(head).AppendLine();
        foreach (var (n, c) in children)
            sb.Append("  (").Append(n).Append("): ").AppendLine(c.ToString().Replace("\n", "\n  "));
        return sb.Append(')').ToString();
    }
}
