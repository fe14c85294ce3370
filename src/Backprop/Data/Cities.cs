namespace Backprop.Data;

/// <summary>A city with its real position in degrees (longitude east positive, latitude north positive).</summary>
/// <param name="Name">The city's name, used as its class name.</param>
/// <param name="Longitude">Degrees east of Greenwich (west is negative).</param>
/// <param name="Latitude">Degrees north of the equator.</param>
public sealed record City(string Name, double Longitude, double Latitude);

/// <summary>
/// The cities example of the classic backprop explanations: points scattered around real cities,
/// labelled by the city. With longitude alone, Madrid, Paris and Berlin are separable on a line;
/// Barcelona sits at nearly Paris's longitude, so telling those two apart needs latitude too.
/// </summary>
public static class Cities
{
    /// <summary>Madrid (-3.7038, 40.4168).</summary>
    public static City Madrid { get; } = new("Madrid", -3.7038, 40.4168);

    /// <summary>Paris (2.3522, 48.8566).</summary>
    public static City Paris { get; } = new("Paris", 2.3522, 48.8566);

    /// <summary>Berlin (13.4050, 52.5200).</summary>
    public static City Berlin { get; } = new("Berlin", 13.4050, 52.5200);

    /// <summary>Barcelona (2.1734, 41.3851).</summary>
    public static City Barcelona { get; } = new("Barcelona", 2.1734, 41.3851);

    /// <summary>The four cities of the two-feature example: Madrid, Paris, Berlin, Barcelona.</summary>
    public static IReadOnlyList<City> All { get; } = [Madrid, Paris, Berlin, Barcelona];

    /// <summary>The three cities of the one-feature (longitude) example: Madrid, Paris, Berlin.</summary>
    public static IReadOnlyList<City> LongitudeExample { get; } = [Madrid, Paris, Berlin];

    /// <summary>The city of <see cref="All"/> with this name (case-insensitive).</summary>
    public static City Find(string name) =>
        All.FirstOrDefault(c => string.Equals(c.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"Cities.Find: no city named '{name}'; known: {string.Join(", ", All.Select(c => c.Name))}.", nameof(name));

    /// <summary>
    /// Points drawn from a Gaussian of standard deviation <paramref name="spread"/> degrees around each
    /// city; sample i belongs to city i mod k, so classes are balanced. Inputs float32
    /// [samples, 2] as (longitude, latitude), or [samples, 1] longitude only; targets int64 indices
    /// into <paramref name="cities"/>, whose names become the class names.
    /// </summary>
    /// <param name="samples">Number of points in all.</param>
    /// <param name="cities">The cities (default <see cref="All"/>, or <see cref="LongitudeExample"/> when <paramref name="longitudeOnly"/>).</param>
    /// <param name="longitudeOnly">Keep only the longitude feature.</param>
    /// <param name="spread">Standard deviation of the scatter, in degrees.</param>
    /// <param name="seed">Seed of the scatter.</param>
    public static TensorDataset Generate(int samples = 400, IReadOnlyList<City>? cities = null, bool longitudeOnly = false,
        double spread = 0.75, ulong seed = 0)
    {
        cities ??= longitudeOnly ? LongitudeExample : All;
        if (cities.Count == 0) throw new ArgumentException("Cities.Generate: at least one city is needed.", nameof(cities));
        if (samples <= 0) throw new ArgumentOutOfRangeException(nameof(samples), samples, "Cities.Generate: samples must be positive.");
        if (!(spread >= 0) || double.IsInfinity(spread)) throw new ArgumentOutOfRangeException(nameof(spread), spread, "Cities.Generate: spread must be a finite non-negative number of degrees.");
        int features = longitudeOnly ? 1 : 2;
        var g = new Generator(seed);
        var x = Tensor.HostEmpty<float>([samples, features]);
        var y = Tensor.HostEmpty<long>([samples]);
        var xs = x.Span<float>();
        var ys = y.Span<long>();
        for (int i = 0; i < samples; i++)
        {
            int c = i % cities.Count;
            // Both coordinates are always drawn so that the longitudes are the same with or without latitude.
            double lon = cities[c].Longitude + spread * g.NextNormal();
            double lat = cities[c].Latitude + spread * g.NextNormal();
            xs[i * features] = (float)lon;
            if (!longitudeOnly) xs[i * features + 1] = (float)lat;
            ys[i] = c;
        }
        return new TensorDataset(x, y) { ClassNames = [.. cities.Select(c => c.Name)] };
    }
}
