"""The memory benchmark's verdict (benchmarks/sustained.py): judged on the second half."""

from benchmarks.sustained import Sample, at, second_half_growth


def run(rss: list[float], every: float = 10) -> list[Sample]:
    return [Sample((i + 1) * every, mib, 0.0, 1000 * i, None, None) for i, mib in enumerate(rss)]


def test_a_warm_up_in_the_first_half_is_not_growth():
    samples = run([40, 50, 55, 60, 60, 60, 60, 60, 60, 60])
    assert second_half_growth(samples, 100) == 0


def test_steady_growth_in_the_second_half_is_measured_over_its_span():
    samples = run([50 + i for i in range(10)])  # 1 MiB per 10 s
    growth = second_half_growth(samples, 100)
    assert growth is not None and abs(growth - 5.0) < 1e-9  # samples at 50 … 100 s


def test_one_noisy_sample_does_not_decide():
    samples = run([50, 50, 50, 50, 50, 50, 50, 53, 50, 50])
    growth = second_half_growth(samples, 100)
    assert growth is not None and abs(growth) < 1.0


def test_worker_processes_count_with_the_client():
    samples = [Sample(t, 50, w, 0, None, None) for t, w in ((60, 10), (80, 12), (100, 14))]
    assert abs(second_half_growth(samples, 100) - 4.0) < 1e-9


def test_too_few_samples_to_judge():
    assert second_half_growth(run([50, 51, 52]), 100) is None


def test_at_takes_the_first_sample_from_then_on():
    samples = run([50, 51, 52])
    assert at(samples, 15).rss_mib == 51
    assert at(samples, 999).rss_mib == 52
