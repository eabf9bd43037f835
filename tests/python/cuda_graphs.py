"""CUDA-graph capture check shared by the CUDA tests: a capture fails on any host
synchronisation, and the replay must give what an eager run gave."""
import torch


def assert_graph_replay_matches_eager(step):
    """Runs step() eagerly on a side stream, captures it in a CUDA graph, replays the
    graph and compares the two lists of outputs."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        eager = step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = step()
    graph.replay()
    torch.cuda.synchronize()
    for a, b in zip(captured, eager):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
