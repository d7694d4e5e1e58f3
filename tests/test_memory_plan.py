"""plan_memory: one arena, buffers placed by lifetime.

`check_plan` is a generic checker that recomputes every tensor's lifetime from
the graph (not trusting the plan's own start/end) and asserts: offsets aligned,
everything inside the arena, no two arena buffers with overlapping lifetimes
overlap in bytes, aliases share their input's buffer, in-place writes only
reuse buffers whose every tensor is dead, graph inputs / constants are never
written. It runs on purpose-built graphs and on every example model.
"""

from __future__ import annotations


import numpy as np
import pytest
from onnx import helper

from edgec.frontend import load_onnx
from edgec.ir import Graph, Node, Tensor
from edgec.ops.registry import lookup
from edgec.passes.memory_plan import ALIGN, MemoryPlan, plan_memory
from edgec.passes.pipeline import run_pipeline
from onnx_builders import f32, float_examples, host_vs_onnxruntime, init, model, save

EXAMPLES = float_examples()


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


# ---- the generic checker -------------------------------------------------------

def check_plan(g: Graph, plan: MemoryPlan) -> None:
    n_nodes = len(g.nodes)
    written_at: dict[str, int] = {}
    last_read: dict[str, int] = {}
    for i, n in enumerate(g.nodes):
        for t in n.inputs:
            if t:
                last_read[t] = i
        for o in n.outputs:
            if o:
                assert o not in written_at, f"{o} written twice"
                written_at[o] = i
    for o in g.outputs:
        last_read[o] = n_nodes

    # every runtime tensor has a buffer; kinds are right
    for t in list(g.inputs) + list(written_at):
        assert t in plan.tensor_buffer, f"{t} has no buffer"
    for k, t in enumerate(g.inputs):
        b = plan.buffer_of(t)
        assert b.kind == "input" and b.io_index == k
    for t in g.constants():
        if t.name in plan.tensor_buffer:
            assert plan.buffer_of(t.name).kind == "const"
    for b in plan.buffers:
        assert plan.buffers[b.id] is b
        for t in b.tensors:
            assert plan.tensor_buffer[t] == b.id
            assert g.tensor(t).nbytes <= b.size, (t, b)

    # who writes into which buffer
    for i, n in enumerate(g.nodes):
        out = n.outputs[0]
        b = plan.buffer_of(out)
        d = lookup(n.op, n.domain)
        if d is not None and d.alias:
            assert plan.tensor_buffer[n.inputs[0]] == b.id, f"alias {out} not in its input's buffer"
            continue
        assert b.kind in ("arena", "output"), f"{n.name} writes into a {b.kind} buffer"
        # an op writing into a buffer that already holds tensors is in place:
        # every earlier tensor of the buffer must be dead by now (read at most here)
        earlier = [t for t in b.tensors if t != out and written_at.get(t, -1) < i]
        if earlier:
            assert out in plan.inplace and plan.inplace[out] in n.inputs, (out, earlier)
            assert d is not None and d.inplace
            k = n.inputs.index(plan.inplace[out])
            assert k in d.inplace
            for t in earlier:
                assert last_read.get(t, -1) <= i, f"{out} overwrites {t}, read later at {last_read[t]}"
                assert t not in g.outputs

    # outputs: the root of each graph output is written into that output's array
    out_bufs = [b for b in plan.buffers if b.kind == "output"]
    assert sorted(b.io_index for b in out_bufs) == list(range(len(g.outputs)))
    for k, o in enumerate(g.outputs):
        b = plan.buffer_of(o)
        assert b.kind == "output" and b.io_index == k, (o, b)

    # arena placement
    arena = [b for b in plan.buffers if b.kind == "arena"]
    live = {}
    for b in arena:
        assert b.offset >= 0 and b.offset % ALIGN == 0, b
        assert b.offset + b.size <= plan.arena_size, b
        starts = [written_at[t] for t in b.tensors if t in written_at]
        assert starts, b
        ends = [max(last_read.get(t, written_at[t]), written_at[t]) for t in b.tensors]
        live[b.id] = (min(starts), max(ends))
    assert plan.arena_size % ALIGN == 0
    for i, a in enumerate(arena):
        for b in arena[i + 1:]:
            (s1, e1), (s2, e2) = live[a.id], live[b.id]
            if e1 < s2 or e2 < s1:  # lifetimes disjoint (inclusive ends: read and write in one step conflict)
                continue
            assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset, (
                f"buffers {a.tensors} [{s1},{e1}] and {b.tensors} [{s2},{e2}] overlap in the arena")


# ---- helpers -------------------------------------------------------------------

def _plan(m, tmp_path) -> tuple[Graph, MemoryPlan]:
    g = run_pipeline(load_onnx(save(m, tmp_path / "m.onnx")), "float")
    plan = plan_memory(g)
    check_plan(g, plan)
    return g, plan


def _host_vs_ort(m, tmp_path, seed=0):
    r = host_vs_onnxruntime(save(m, tmp_path / "e2e.onnx"), seed=seed, runs=2)[0]
    check_plan(r.graph, r.plan)
    return r


def _conv(rng, x, y, c_in, c_out, name, k=3):
    w = f"{name}_w"
    return (helper.make_node("Conv", [x, w], [y], name=name, pads=[k // 2] * 4),
            [init(w, (rng.standard_normal((c_out, c_in, k, k)) / np.sqrt(c_in * k * k)).astype(np.float32))])


def _conv_chain(n_layers, channels, hw=8, relu=True):
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    prev = "x"
    for i in range(n_layers):
        out = "y" if i == n_layers - 1 else f"a{i}"
        c, w = _conv(rng, prev, f"c{i}" if relu else out, channels[i], channels[i + 1], f"conv{i}")
        nodes.append(c)
        inits += w
        if relu:
            nodes.append(helper.make_node("Relu", [f"c{i}"], [out], name=f"relu{i}"))
        prev = out
    return model(nodes, [f32("x", [1, channels[0], hw, hw])], [f32("y", [1, channels[-1], hw, hw])], inits)


# ---- ping-pong ---------------------------------------------------------------------

@pytest.mark.parametrize("n_layers", [3, 6, 10])
def test_chain_arena_is_two_buffers(n_layers, tmp_path):
    g, plan = _plan(_conv_chain(n_layers, [4] * (n_layers + 1)), tmp_path)
    assert [n.op for n in g.nodes] == ["Conv"] * n_layers  # relus fused
    size = 4 * 8 * 8 * 4
    arena = [b for b in plan.buffers if b.kind == "arena"]
    assert len(arena) == n_layers - 1  # the last conv writes the output array
    assert sum(b.size for b in arena) == (n_layers - 1) * size
    # intermediate i+1 is written while intermediate i is read: two buffers alternate
    assert plan.arena_size == (2 if n_layers > 2 else 1) * size
    assert {b.offset for b in arena} == ({0, size} if n_layers > 2 else {0})


def test_chain_with_varying_widths_close_to_two_largest(tmp_path):
    widths = [3, 8, 16, 8, 4, 16, 4]
    g, plan = _plan(_conv_chain(len(widths) - 1, widths), tmp_path)
    sizes = [c * 8 * 8 * 4 for c in widths[1:-1]]  # intermediates
    adjacent = max(a + b for a, b in zip(sizes, sizes[1:]))
    # adjacent intermediates are live together, so `adjacent` is a lower bound; the
    # greedy largest-first placement may leave a small hole (here 1 KiB) above it
    assert adjacent <= plan.arena_size <= adjacent + min(sizes)
    assert plan.arena_size < sum(sizes) * 0.6


def test_chain_with_widening_layers_is_two_largest(tmp_path):
    widths = [3, 4, 6, 8, 12, 16, 2]
    g, plan = _plan(_conv_chain(len(widths) - 1, widths), tmp_path)
    sizes = [c * 8 * 8 * 4 for c in widths[1:-1]]
    assert plan.arena_size == sizes[-1] + sizes[-2]


def test_arena_much_smaller_than_sum_for_long_chain(tmp_path):
    g, plan = _plan(_conv_chain(12, [2] + [6] * 12), tmp_path)
    total = sum(b.size for b in plan.buffers if b.kind == "arena")
    assert plan.arena_size * 5 <= total


def test_chain_host_c_matches_onnxruntime(tmp_path):
    _host_vs_ort(_conv_chain(5, [3, 4, 6, 6, 4, 2], hw=6), tmp_path)


# ---- aliases -------------------------------------------------------------------

def test_aliases_share_their_input_buffer(tmp_path):
    rng = np.random.default_rng(1)
    c1, w1 = _conv(rng, "x", "a", 3, 4, "conv1")
    nodes = [
        c1,
        helper.make_node("Reshape", ["a", "shape"], ["r"], name="reshape"),
        helper.make_node("Flatten", ["r"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "fc_w"], ["y"], name="fc"),
    ]
    inits = w1 + [init("shape", np.array([1, 4, 16], np.int64)),
                  init("fc_w", rng.standard_normal((64, 5)).astype(np.float32))]
    m = model(nodes, [f32("x", [1, 3, 4, 4])], [f32("y", [1, 5])], inits)
    g, plan = _plan(m, tmp_path)
    b = plan.buffer_of("a")
    assert plan.buffer_of("r") is b and plan.buffer_of("f") is b
    assert b.tensors == ["a", "r", "f"]
    assert b.end == [n.name for n in g.nodes].index("fc")  # lives until the alias's last reader
    arena = [x for x in plan.buffers if x.kind == "arena"]
    assert arena == [b]
    assert plan.arena_size == _align(4 * 16 * 4)  # no extra bytes for the aliases
    _host_vs_ort(m, tmp_path)


def test_alias_of_graph_input_stays_in_the_input(tmp_path):
    rng = np.random.default_rng(2)
    nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("Gemm", ["f", "w"], ["y"])]
    m = model(nodes, [f32("x", [1, 2, 3])], [f32("y", [1, 4])], [init("w", rng.standard_normal((6, 4)).astype(np.float32))])
    g, plan = _plan(m, tmp_path)
    assert plan.buffer_of("f").kind == "input"
    assert plan.arena_size == 0
    _host_vs_ort(m, tmp_path)


# ---- in place ------------------------------------------------------------------

def test_inplace_add_reuses_a_dead_input(tmp_path):
    # a = conv1(x); b = conv2(a); s = a + b; y = conv3(s): s overwrites a
    rng = np.random.default_rng(3)
    c1, w1 = _conv(rng, "x", "a", 3, 4, "conv1")
    c2, w2 = _conv(rng, "a", "b", 4, 4, "conv2")
    c3, w3 = _conv(rng, "s", "y", 4, 2, "conv3")
    m = model([c1, c2, helper.make_node("Add", ["a", "b"], ["s"], name="add"), c3],
              [f32("x", [1, 3, 6, 6])], [f32("y", [1, 2, 6, 6])], w1 + w2 + w3)
    g, plan = _plan(m, tmp_path)
    assert plan.inplace == {"s": "a"}
    assert plan.buffer_of("s") is plan.buffer_of("a")
    assert plan.buffer_of("a").tensors == ["a", "s"]
    assert plan.arena_size == 2 * 4 * 36 * 4
    _host_vs_ort(m, tmp_path)


def test_inplace_relu_after_unfusable_producer(tmp_path):
    # Transpose is not a fusion producer: the Relu stays and runs in place
    rng = np.random.default_rng(4)
    c1, w1 = _conv(rng, "x", "a", 3, 4, "conv1")
    c2, w2 = _conv(rng, "r", "y", 4, 2, "conv2")
    m = model([c1, helper.make_node("Transpose", ["a"], ["t"], perm=[0, 1, 3, 2]),
               helper.make_node("Relu", ["t"], ["r"]), c2],
              [f32("x", [1, 3, 4, 6])], [f32("y", [1, 2, 6, 4])], w1 + w2)
    g, plan = _plan(m, tmp_path)
    assert [n.op for n in g.nodes] == ["Conv", "Transpose", "Relu", "Conv"]
    assert plan.inplace == {"r": "t"}
    assert plan.buffer_of("r") is plan.buffer_of("t")
    _host_vs_ort(m, tmp_path)


def test_inplace_on_ir_graph():
    # built directly: x -> Sigmoid -> a -> Relu -> b -> Tanh -> y
    t = {n: Tensor(n, (1, 7), "float32") for n in ("x", "a", "b", "y")}
    g = Graph("g", t, [Node("s", "Sigmoid", ("x",), ("a",)), Node("r", "Relu", ("a",), ("b",)),
                       Node("t", "Tanh", ("b",), ("y",))], ["x"], ["y"])
    plan = plan_memory(g)
    check_plan(g, plan)
    assert plan.inplace == {"b": "a"}
    assert plan.buffer_of("x").kind == "input"  # never written in place
    assert plan.arena_size == _align(28) == 32


def test_no_inplace_into_graph_input(tmp_path):
    m = model([helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Sigmoid", ["a"], ["y"])],
              [f32("x", [1, 8])], [f32("y", [1, 8])])
    g, plan = _plan(m, tmp_path)
    assert "a" not in plan.inplace
    assert plan.buffer_of("a").kind == "arena"
    _host_vs_ort(m, tmp_path)


def test_buffer_read_later_is_not_overwritten(tmp_path):
    # h and a are both read again after s = h + a: s gets a fresh buffer
    rng = np.random.default_rng(5)
    c1, w1 = _conv(rng, "x", "h", 3, 4, "conv1")
    c2, w2 = _conv(rng, "h", "a", 4, 4, "conv2")
    c3, w3 = _conv(rng, "u", "y", 4, 2, "conv3")
    nodes = [c1, c2,
             helper.make_node("Add", ["h", "a"], ["s"], name="add1"),
             helper.make_node("Mul", ["s", "a"], ["t"], name="mul"),
             helper.make_node("Add", ["t", "h"], ["u"], name="add2"), c3]
    m = model(nodes, [f32("x", [1, 3, 5, 5])], [f32("y", [1, 2, 5, 5])], w1 + w2 + w3)
    g, plan = _plan(m, tmp_path)
    assert "s" not in plan.inplace
    assert len({plan.tensor_buffer[t] for t in ("h", "a", "s")}) == 3
    assert plan.inplace == {"t": "s", "u": "t"}  # s, then t, die at their only reader
    _host_vs_ort(m, tmp_path)


def test_residual_block_host_c(tmp_path):
    # x -> conv0 -> relu -> h ; h -> conv1 -> relu -> conv2 -> a ; s = relu(a + h) ; y = conv3(s)
    rng = np.random.default_rng(6)
    c0, w0 = _conv(rng, "x", "c0", 3, 4, "conv0")
    c1, w1 = _conv(rng, "h", "c1", 4, 4, "conv1")
    c2, w2 = _conv(rng, "r1", "a", 4, 4, "conv2")
    c3, w3 = _conv(rng, "s", "y", 4, 3, "conv3")
    nodes = [c0, helper.make_node("Relu", ["c0"], ["h"]), c1, helper.make_node("Relu", ["c1"], ["r1"]), c2,
             helper.make_node("Add", ["a", "h"], ["sum"]), helper.make_node("Relu", ["sum"], ["s"]), c3]
    m = model(nodes, [f32("x", [1, 3, 8, 8])], [f32("y", [1, 3, 8, 8])], w0 + w1 + w2 + w3)
    g, plan = _plan(m, tmp_path)
    assert [(n.op, [e.op for e in n.attrs.get("_epilogue", ())]) for n in g.nodes] == [
        ("Conv", ["Relu"]), ("Conv", ["Relu"]), ("Conv", []), ("Add", ["Relu"]), ("Conv", [])]
    # h (the skip branch) lives across conv1/conv2: nothing written then may land on it
    hb = plan.buffer_of("h")
    for t in ("r1", "a"):
        b = plan.buffer_of(t)
        assert b is not hb
        assert b.offset + b.size <= hb.offset or hb.offset + hb.size <= b.offset
    # the add may overwrite one of its inputs (both die there)
    assert plan.inplace.get("s") in ("a", "h")
    size = 4 * 64 * 4
    assert plan.arena_size == 3 * size  # h + two ping-pong buffers
    _host_vs_ort(m, tmp_path)


def test_two_branches_live_together(tmp_path):
    rng = np.random.default_rng(7)
    c1, w1 = _conv(rng, "x", "a", 2, 4, "conv1")
    c2, w2 = _conv(rng, "x", "b", 2, 4, "conv2")
    c3, w3 = _conv(rng, "a", "a2", 4, 4, "conv3")
    m = model([c1, c2, c3, helper.make_node("Sub", ["a2", "b"], ["y"])],
              [f32("x", [1, 2, 4, 4])], [f32("y", [1, 4, 4, 4])], w1 + w2 + w3)
    g, plan = _plan(m, tmp_path)
    assert plan.arena_size == 3 * 4 * 16 * 4
    _host_vs_ort(m, tmp_path)


# ---- alignment -------------------------------------------------------------------

def test_offsets_aligned_with_odd_sizes(tmp_path):
    # 1x3x5 floats = 60 bytes, 1x7 = 28 bytes: offsets still land on 16-byte boundaries
    rng = np.random.default_rng(8)
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["a"]),  # (3,5)
        helper.make_node("MatMul", ["a", "w2"], ["b"]),  # (3,7)
        helper.make_node("MatMul", ["b", "w3"], ["c"]),  # (3,5)
        helper.make_node("Add", ["c", "a"], ["d"]),
        helper.make_node("MatMul", ["d", "w4"], ["y"]),
    ]
    inits = [init("w1", rng.standard_normal((4, 5)).astype(np.float32)),
             init("w2", rng.standard_normal((5, 7)).astype(np.float32)),
             init("w3", rng.standard_normal((7, 5)).astype(np.float32)),
             init("w4", rng.standard_normal((5, 2)).astype(np.float32))]
    m = model(nodes, [f32("x", [3, 4])], [f32("y", [3, 2])], inits)
    g, plan = _plan(m, tmp_path)
    arena = [b for b in plan.buffers if b.kind == "arena"]
    assert {b.size for b in arena} == {60, 84}
    assert all(b.offset % ALIGN == 0 for b in arena)
    assert len({b.offset for b in arena}) > 1
    _host_vs_ort(m, tmp_path)


# ---- every example ---------------------------------------------------------------

@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_plans_are_valid(path):
    g = run_pipeline(load_onnx(path), "float")
    plan = plan_memory(g)
    check_plan(g, plan)
    arena = [b for b in plan.buffers if b.kind == "arena"]
    if arena:
        assert max(b.size for b in arena) <= plan.arena_size <= sum(_align(b.size) for b in arena)


def test_examples_present():
    assert len(EXAMPLES) >= 5


# ---- the checker itself catches bad plans ------------------------------------------

def test_checker_rejects_overlap(tmp_path):
    g, plan = _plan(_conv_chain(4, [4] * 5), tmp_path)
    arena = [b for b in plan.buffers if b.kind == "arena"]
    a, b = arena[0], arena[1]  # consecutive intermediates: live together at one layer
    b.offset = a.offset
    with pytest.raises(AssertionError, match="overlap"):
        check_plan(g, plan)


def test_checker_rejects_unsafe_inplace(tmp_path):
    t = {n: Tensor(n, (1, 8), "float32") for n in ("x", "a", "b", "y")}
    g = Graph("g", t, [Node("s", "Sigmoid", ("x",), ("a",)), Node("r", "Relu", ("a",), ("b",)),
                       Node("add", "Add", ("a", "b"), ("y",))], ["x"], ["y"])
    plan = plan_memory(g)
    check_plan(g, plan)
    assert "b" not in plan.inplace  # a is read again by the Add
    # force b into a's buffer: the checker must notice
    ba, bb = plan.buffer_of("a"), plan.buffer_of("b")
    bb.tensors.remove("b")
    ba.tensors.append("b")
    plan.tensor_buffer["b"] = ba.id
    plan.inplace["b"] = "a"
    with pytest.raises(AssertionError, match="read later"):
        check_plan(g, plan)
