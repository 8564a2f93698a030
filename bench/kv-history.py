#!/usr/bin/env python3
"""A Porcupine-style KV history: P clients, one op at a time, random keys; each op takes
effect at a random instant inside its interval (linearizable by construction). Optional
appends (values then repeat as states, so the checker searches). --stale injects one stale
read in the last quarter: a read returns a value overwritten before it was invoked."""
import json, random, argparse
ap = argparse.ArgumentParser()
ap.add_argument('--ops', type=int, default=5000); ap.add_argument('--clients', type=int, default=50)
ap.add_argument('--keys', type=int, default=5); ap.add_argument('--seed', type=int, default=1)
ap.add_argument('--append', type=int, default=0); ap.add_argument('--stale', action='store_true')
a = ap.parse_args(); rng = random.Random(a.seed)
clock = [0]*a.clients; ops = []
for n in range(a.ops):
    t = min(range(a.clients), key=lambda c: clock[c])
    call = clock[t] + 1 + rng.randrange(1000_000); ret = call + 2 + rng.randrange(3_000_000)
    at = rng.randrange(call + 1, ret)
    r = rng.randrange(100)
    kind = 'get' if r < 50 else ('append' if r < 50 + a.append else 'put')
    ops.append(dict(p=t, key=f"k{rng.randrange(a.keys)}", f=kind, v=str(n + 1) + (',' if kind == 'append' else ''), call=call, ret=ret, at=at))
    clock[t] = ret
state = {}
for o in sorted(ops, key=lambda o: o['at']):
    if o['f'] == 'get': o['read'] = state.get(o['key'])
    elif o['f'] == 'put': state[o['key']] = o['v']
    else: state[o['key']] = state.get(o['key'], '') + o['v']
if a.stale:
    # the first read in the last quarter whose key had two puts, w1 then w2, both done before it
    for o in sorted(ops, key=lambda o: o['call'])[len(ops)*3//4:]:
        if o['f'] != 'get': continue
        done = [w for w in ops if w['f'] == 'put' and w['key'] == o['key'] and w['ret'] < o['call']]
        pair = [(w1, w2) for w1 in done for w2 in done if w1['ret'] < w2['call']]
        if pair:
            o['read'] = pair[0][0]['v']; break
ev = []
for o in ops:
    inv = dict(process=o['p'], type='invoke', f=o['f'], key=o['key'], value=None if o['f'] == 'get' else o['v'], time=o['call'])
    done = dict(inv, type='ok', time=o['ret'])
    if o['f'] == 'get': done['value'] = o['read']
    ev += [(o['call'], 0, inv), (o['ret'], 1, done)]
for _, _, e in sorted(ev, key=lambda x: (x[0], x[1])): print(json.dumps(e))
