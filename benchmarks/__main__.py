"""Run every benchmark: python -m benchmarks"""

from . import coba, compile_time, cuba, scaling, vs_brian2, vs_eventax, warm_start, waveforms, weak

print("== compile time ==")
compile_time.main()
print("\n== eqneuron vs eventax ==")
vs_eventax.main([])
print("\n== a second process of the same training run ==")
warm_start.main([])
print("\n== eqneuron vs Brian2 ==")
vs_brian2.main()
print("\n== scaling ==")
scaling.main()
print("\n== input waveforms ==")
waveforms.main()
print("\n== CUBA graph vs Brian2 ==")
cuba.main([])
print("\n== COBAHH graph vs Brian2 ==")
coba.main([])
print("\n== exact spike times, weakly coupled network ==")
weak.main([])
