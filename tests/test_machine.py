"""What a run records about its machine: the processor by model, the threads, the kernels and what forced them."""

from coconut.machine import cpu_name, describe, label


def test_the_machine_is_named_by_model_and_kernels(monkeypatch):
    cpuinfo = "processor\t: 0\nmodel name\t: Intel(R)  Xeon(R) Processor\ncpu family\t: 6\nmodel\t\t: 207\n" \
              "processor\t: 1\nmodel name\t: Intel(R) Xeon(R) Processor\n"
    assert cpu_name(cpuinfo) == "Intel(R) Xeon(R) Processor (family 6 model 207)"
    monkeypatch.setenv("MKL_CBWR", "AVX2")
    machine = describe()
    assert machine["kernel_variables"] == {"MKL_CBWR": "AVX2"} and machine["threads"] >= 1
    assert label(machine).endswith(f"{machine['threads']} threads, {machine['kernels']} kernels (MKL_CBWR=AVX2)")
    assert label(None) == "not recorded"
