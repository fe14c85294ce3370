namespace Backprop.Tests;

public class SmokeTests
{
    [Fact]
    public void ThreadsCountIsPositive() => Assert.True(Threads.Count >= 1);
}
