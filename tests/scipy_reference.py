"""An independent reference for spike trains: scipy's solve_ivp between events.

Resets, recurrent jumps and input jumps are applied by hand; threshold crossings are
located by root finding on the solver's dense output, scanned at several points per
step, because solve_ivp's own event detection misses a crossing that goes up and down
again inside one step.
"""

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import brentq


def scipy_spike_trains(
    rhs,
    y0,
    t1,
    condition,
    on_spike=None,
    inputs=(),
    refractory=None,
    frozen=(),
    tol=1e-12,
    substeps=16,
    chunk=20.0,
):
    """Spike trains of n neurons (state array `y` of shape (states, n)) by scipy.

    `rhs(t, y)` returns dy/dt; `condition(y)` (shape (n,), a spike at an upward zero
    crossing) also broadcasts over a trailing axis of times; `on_spike(y, k)` returns the
    state after neuron k fired (its reset and its targets' jumps, from the values before);
    `on_spike=None` makes every threshold a detector.  A condition is armed while below
    zero and re-arms when it falls below zero again; an input jump that lifts an armed
    condition to zero or above fires it at once.  `inputs` is a list of (time, jump(y)).
    With a `refractory` period (ms), a neuron that fired cannot fire again for that long,
    its states `frozen` (row indices) stand still meanwhile, and it fires at the end of
    the period if its condition is then at or above zero.  `tol` is the solver's rtol and
    atol (DOP853); each solve covers at most `chunk` ms.  Returns one array of spike times
    per neuron.
    """
    y0 = np.asarray(y0, float)
    shape, n = y0.shape, y0.shape[1]
    inputs = sorted((event for event in inputs if event[0] <= t1), key=lambda event: event[0])
    trains = [[] for _ in range(n)]
    armed = condition(y0) < 0
    refractory_until = np.full(n, -np.inf)
    frozen = list(frozen)

    def fire(t, y, k):
        trains[k].append(t)
        if on_spike is None:
            armed[k] = False
            return y
        y = np.asarray(on_spike(y.copy(), k), float)
        if refractory is None:
            armed[k] = condition(y)[k] < 0
        else:
            armed[k], refractory_until[k] = True, t + refractory
        return fire_at_once(t, y)

    def fire_at_once(t, y):
        above = np.flatnonzero(armed & (refractory_until <= t) & (condition(y) >= 0))
        return fire(t, y, above[0]) if len(above) else y

    def g_at(sol, s, k):
        return condition(sol.sol(s).reshape(shape))[k]

    def stoppers(can_fire):
        # end a solve soon after an armed condition exceeds zero (past a spike AdEx and Izhikevich
        # blow up); the crossing itself is located on the dense output, so a missed stop costs time only
        events = []
        for k in np.flatnonzero(can_fire):

            def stop(s, flat, k=k):
                return condition(flat.reshape(shape))[k] - 1e-6

            stop.terminal, stop.direction = True, 1
            events.append(stop)
        return events

    t, y, next_input = 0.0, y0, 0
    while True:
        t_input = inputs[next_input][0] if next_input < len(inputs) else np.inf
        still = refractory_until > t
        t_end = min(t_input, t1, t + chunk, np.min(refractory_until[still], initial=np.inf))
        can_fire = armed & ~still
        first = None
        if t_end > t:

            def field(s, flat, still=still):
                dy = np.array(rhs(s, flat.reshape(shape)))
                if frozen:
                    dy[np.ix_(frozen, still)] = 0.0
                return dy.ravel()

            sol = solve_ivp(
                field,
                (t, t_end),
                y.ravel(),
                method="DOP853",
                rtol=tol,
                atol=tol,
                dense_output=True,
                events=stoppers(can_fire),
            )
            theta = np.linspace(0.0, 1.0, substeps, endpoint=False)
            grid = np.concatenate([a + (b - a) * theta for a, b in zip(sol.t[:-1], sol.t[1:])] + [sol.t[-1:]])
            G = condition(sol.sol(grid).reshape(*shape, -1)).T  # (grid, neurons)
            for k in np.flatnonzero(~still):
                g = G[:, k]
                start = 0 if armed[k] else 1 + np.argmax(g[1:] < 0) if np.any(g[1:] < 0) else len(g)
                above = np.flatnonzero(g[start + 1 :] >= 0)
                if len(above):
                    j = start + above[0]  # g[j] < 0 <= g[j + 1]
                    tc = brentq(lambda s: g_at(sol, s, k), grid[j], grid[j + 1], xtol=1e-14, rtol=1e-15)
                    first = min(first or (np.inf, k), (tc, k))
            assert first is not None or sol.status == 0, sol.message
        if first is not None:
            t, k = first
            armed |= np.any(G[1:][grid[1:] <= t] < 0, axis=0)  # the first point is where the last event left
            y = fire(t, sol.sol(t).reshape(shape), k)
            continue
        if t_end > t:
            armed |= np.any(G[1:] < 0, axis=0)
            y = sol.y[:, -1].reshape(shape)
        t = t_end
        if t == t_input:
            y = np.asarray(inputs[next_input][1](y.copy()), float)
            next_input += 1
        y = fire_at_once(t, y)  # lifted by an input, or at the end of a refractory period
        if t == t1 and next_input == len(inputs):
            return [np.array(train) for train in trains]
