"""The plain self-checking Verilog bench of a block, ``tb/vectors/<block>_tb.v``, written
from one template and the block's port list (:mod:`cimcodec.sim.vectors`).

The bench is Verilog-2005 plus ``$fatal``: no SystemVerilog types, no DPI, no cocotb, so
any simulator compiles it (Icarus with ``-g2012``, Verilator with ``--binary --timing``,
the commercial ones as they are). It

* reads the vector files of ``+vectors=DIR`` with ``$readmemh``, after checking that
  ``counts.hex`` fits the memories (parameters ``MAX_JOBS``, ``MAX_SEGMENTS``,
  ``DEPTH_<port>``) and that no file is shorter or longer than it says (each file is
  read twice, over a memory cleared to zeros and then to ones: a line the file lacks
  keeps the two values apart);
* runs the jobs one after the other: reset for two clocks with the plain inputs set,
  the input segments in order, every output stream compared in order
  (``!==``: an X is a mismatch); the job ends when every expected transfer arrived,
  every input was taken (unless the job is ``partial``) and every watched plain output
  has its value, or fails when its clock limit passes;
* stalls the streams of a job that asks for it: one 32-bit Galois LFSR per stream
  (``x^32 + x^22 + x^2 + x + 1``), seeded from ``+seed=N``, stepped 16 times a clock; a
  source idles and a sink refuses on ``+stall=P`` percent of the clocks (default 30;
  0: no stalls at all), or, in the bursty mode, a sink refuses in runs of 1..256
  clocks;
* prints ``PASS`` or ``FAIL`` with the first mismatch (file, line index counted from 0
  among the transfers, job, expected, got), then ``SUMMARY <block> PASS|FAIL jobs J/N
  in I out O clocks C seed S``, and ends with ``$finish`` or ``$fatal(1)``.

``python -m cimcodec.sim.plain_bench`` rewrites the benches of every registered block
under ``tb/vectors/``; a test checks the committed files equal what this writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cimcodec.sim.vector_block import SEGMENT_LAYOUT, Block
from cimcodec.sim.vector_cases import BLOCKS

#: Galois LFSR toggle mask of the stall generators.
LFSR_TAPS = 0x80200003

#: The bench's state of each stream port: (kinds of port, declaration, variable, value at
#: the start or ``None``): the next line of its file, where the job's expected
#: transfers stop, its compare mode, the stall LFSR and its draw, the bursty pause.
PORT_STATE = (
    (("in", "out"), "integer", "ptr", "0"),
    (("out",), "integer", "stop", None),
    (("out",), "reg [1:0]", "mode", None),
    (("in", "out"), "reg [31:0]", "lf", "seed_of(seed, {k})"),
    (("in", "out"), "reg", "pause", None),
    (("out",), "integer", "run", "0"),
    (("out",), "reg", "burst", "0"),
)

#: Reserved words a port name may not be used as verbatim (escaped then).
_KEYWORDS = frozenset("""always and assign begin buf case casex casez cmos deassign default
defparam disable edge else end endcase endfunction endmodule endprimitive endspecify
endtable endtask event for force forever fork function highz0 highz1 if initial inout input
integer join large macromodule medium module nand negedge nmos nor not notif0 notif1 or
output parameter pmos posedge primitive pull0 pull1 pulldown pullup rcmos real realtime reg
release repeat rnmos rpmos rtran rtranif0 rtranif1 scalared small specify specparam strong0
strong1 supply0 supply1 table task time tran tranif0 tranif1 tri tri0 tri1 triand trior
trireg vectored wait wand weak0 weak1 while wire wor xnor xor byte string bit logic int
""".split())


def _id(name: str) -> str:
    """A Verilog identifier for ``name`` (escaped if it is a keyword)."""
    return f"\\{name} " if name in _KEYWORDS else name


def _field(layout, name: str, var: str) -> str:
    """``var[hi:lo]`` of field ``name`` of a flat struct layout."""
    f = layout[name]
    return f"{var}[{f.offset + f.width - 1}:{f.offset}]"


def render(block: Block) -> str:
    """The bench text of ``block``."""
    ins, outs = block.by_kind("in"), block.by_kind("out")
    setups, watched = block.by_kind("setup"), block.watched
    streams = ins + outs
    job = block.job_layout
    top = f"{block.name}_tb"
    term = block.terminator_bits()
    lines = []
    emit = lines.append

    emit(f"// {top}: plain self-checking bench of the cimcodec block `{block.name}`,")
    emit("// written by cimcodec.sim.plain_bench from the block's port list; do not edit.")
    emit(f"// Built for {block.params!r}.")
    emit("// Compile with the block's Verilog (DIR/" + block.name + ".v), top module "
         + top + "; run with")
    emit("//   +vectors=DIR  the block's vector directory (default .)")
    emit("//   +seed=N       seed of the stall LFSRs (default 1)")
    emit("//   +stall=P      percent of clocks a stalling job idles a source / refuses at")
    emit("//                 a sink (default 30; 0: no stalls)")
    emit("// File formats: cimcodec.sim.vectors (and DIR/manifest.json).")
    emit(f"module {top};")
    emit("  parameter MAX_JOBS = 4096;")
    emit("  parameter MAX_SEGMENTS = 65536;")
    for p in streams:
        emit(f"  parameter DEPTH_{p.name} = 65536;")
    emit(f"  localparam JOB_W = {job.size};")
    emit(f"  localparam SEG_W = {SEGMENT_LAYOUT.size};")
    emit(f"  localparam NCOUNTS = {2 + len(streams)};")
    emit("  localparam S_LOAD = 0, S_RESET = 1, S_RUN = 2, S_END = 3;")
    emit("")
    emit("  reg clk;")
    emit("  reg rst;")
    for p in ins:
        emit(f"  reg {p.name}__valid;")
        emit(f"  wire {p.name}__ready;")
        emit(f"  reg [{p.width - 1}:0] {p.name}__payload;")
    for p in outs:
        emit(f"  wire {p.name}__valid;")
        emit(f"  reg {p.name}__ready;")
        emit(f"  wire [{p.width - 1}:0] {p.name}__payload;")
    for p in setups:
        emit(f"  reg [{p.width - 1}:0] {_id(p.name)};")
    for p in block.by_kind("status"):
        emit(f"  wire [{p.width - 1}:0] {_id(p.name)};")
    conns = [".clk(clk)", ".rst(rst)"]
    for p in streams:
        conns += [f".{p.name}__{s}({p.name}__{s})" for s in ("valid", "ready", "payload")]
    conns += [f".{_id(p.name)}({_id(p.name)})" for p in setups + block.by_kind("status")]
    emit(f"  {block.name} dut (")
    emit(",\n".join(f"    {c}" for c in conns))
    emit("  );")
    emit("")
    emit("  reg [31:0] counts [0:NCOUNTS-1];")
    emit("  reg [JOB_W-1:0] jobs [0:MAX_JOBS-1];")
    emit("  reg [SEG_W-1:0] segs [0:MAX_SEGMENTS-1];")
    for p in streams:
        emit(f"  reg [{p.width - 1}:0] mem_{p.name} [0:DEPTH_{p.name}-1];")
    emit("")
    emit("  reg [8*1024-1:0] dir;")
    emit("  reg [8*1100-1:0] path;")
    emit("  reg [31:0] seed;")
    emit("  integer stall_pct;")
    emit("  reg [1:0] state;")
    emit("  reg failed;")
    emit("  integer n_jobs, n_segs, job, seg, seg_stop, left, reset_left;")
    emit("  integer job_clocks, clocks, n_in, n_out;")
    emit("  reg [3:0] cur;")
    emit("  reg [JOB_W-1:0] jd;")
    emit("  reg [1:0] stall_mode;")
    emit("  reg hold, xfer, in_done, out_done, watch_ok;")
    for p in streams:
        for kinds, decl, var, _ in PORT_STATE:
            if p.kind in kinds:
                emit(f"  {decl} {var}_{p.name};")
    emit("")
    emit("  function [31:0] step;  // 16 steps of the stall LFSR")
    emit("    input [31:0] x;")
    emit("    integer i;")
    emit("    begin")
    emit("      step = x;")
    emit("      for (i = 0; i < 16; i = i + 1)")
    emit(f"        step = step[0] ? (step >> 1) ^ 32'h{LFSR_TAPS:08x} : step >> 1;")
    emit("    end")
    emit("  endfunction")
    emit("")
    emit("  function draw;  // a pause on stall_pct percent of the draws")
    emit("    input [31:0] x;")
    emit("    begin")
    emit("      draw = ({16'b0, x[15:0]} * 32'd100) < (stall_pct << 16);")
    emit("    end")
    emit("  endfunction")
    emit("")
    emit("  function [31:0] seed_of;  // never zero")
    emit("    input [31:0] s;")
    emit("    input [31:0] k;")
    emit("    begin")
    emit("      seed_of = s * 32'h9e3779b1 + (k + 1) * 32'h7f4a7c15;")
    emit("      if (seed_of == 0) seed_of = 32'h1;")
    emit("    end")
    emit("  endfunction")
    emit("")

    # Loading: counts, then every memory, each read twice (short and long files).
    # Every file is checked to hold exactly the lines counts.hex gives before
    # $readmemh reads it (a missing, cut or padded file fails, on any simulator).
    emit("  function integer lines_of;  // data lines of the file `path`, -1 if unreadable")
    emit("    input integer unused;")
    emit("    integer fd, n;")
    emit("    reg [8*2048-1:0] text;")
    emit("    reg [7:0] c;")
    emit("    begin")
    emit('      fd = $fopen(path, "r");')
    emit("      lines_of = -1;")
    emit("      if (fd != 0) begin")
    emit("        lines_of = 0;")
    emit("        n = $fgets(text, fd);")
    emit("        while (n > 0) begin")
    emit("          c = text >> (8 * (n - 1));  // the line's first character")
    emit("          if ((c >= \"0\" && c <= \"9\") || (c >= \"a\" && c <= \"f\")"
         " || (c >= \"A\" && c <= \"F\"))")
    emit("            lines_of = lines_of + 1;")
    emit("          n = $fgets(text, fd);")
    emit("        end")
    emit("        $fclose(fd);")
    emit("      end")
    emit("    end")
    emit("  endfunction")
    emit("")
    emit("  task check_lines;  // the file `name` of the vector directory holds n lines")
    emit("    input [8*64-1:0] name;")
    emit("    input integer n;")
    emit("    integer got;")
    emit("    begin")
    emit('      $sformat(path, "%0s/%0s", dir, name);')
    emit("      got = lines_of(0);")
    emit("      if (got != n) begin")
    emit("        if (got < 0)")
    emit(f'          $display("FAIL {block.name}: cannot read %0s", path);')
    emit("        else")
    emit(f'          $display("FAIL {block.name}: %0s holds %0d lines, counts.hex gives %0d", '
         'path, got, n);')
    emit("        failed = 1;")
    emit("      end")
    emit("    end")
    emit("  endtask")
    emit("")
    emit("  task read_counts;")
    emit("    begin")
    emit('      check_lines("counts.hex", NCOUNTS);')
    emit("      if (!failed) $readmemh(path, counts);")
    emit("    end")
    emit("  endtask")
    emit("")
    emit("  task fail_depth;")
    emit("    input [8*64-1:0] name;")
    emit("    input integer n;")
    emit("    input integer depth;")
    emit("    begin")
    emit(f'      $display("FAIL {block.name}: %0d lines of %0s do not fit the memory of %0d: '
         'set parameter %0s above %0d", n, name, depth, name, n);')
    emit("      failed = 1;")
    emit("    end")
    emit("  endtask")
    emit("")

    memories = [("jobs", "jobs.hex", "n_jobs", "MAX_JOBS"),
                ("segs", "segments.hex", "n_segs", "MAX_SEGMENTS")]
    memories += [(f"mem_{p.name}", p.file, f"counts[{2 + k}]", f"DEPTH_{p.name}")
                 for k, p in enumerate(streams)]
    emit("  initial begin : load")
    emit("    clk = 0;")
    emit("    rst = 1;")
    emit("    failed = 0;")
    for p in ins:
        emit(f"    {p.name}__valid = 0;")
        emit(f"    {p.name}__payload = 0;")
    for p in outs:
        emit(f"    {p.name}__ready = 0;")
    for p in setups:
        emit(f"    {_id(p.name)} = 0;")
    emit('    if (!$value$plusargs("vectors=%s", dir)) dir = ".";')
    emit('    if (!$value$plusargs("seed=%d", seed)) seed = 1;')
    emit('    if (!$value$plusargs("stall=%d", stall_pct)) stall_pct = 30;')
    emit('    read_counts;')
    emit("    n_jobs = counts[0];")
    emit("    n_segs = counts[1];")
    for mem, name, count, depth in memories:
        emit(f"    if (!failed && {count} >= {depth}) fail_depth(\"{depth}\", {count}, {depth});")
        emit(f"    if (!failed) check_lines(\"{name}\", {count});")
        emit(f"    if (!failed && {count} > 0) $readmemh(path, {mem}, 0, {count} - 1);")
    emit("    if (!failed && n_jobs == 0) begin")
    emit(f'      $display("FAIL {block.name}: %0s/jobs.hex holds no job", dir);')
    emit("      failed = 1;")
    emit("    end")
    emit("    job = 0;")
    emit("    cur = 0;")
    emit("    seg = 0;")
    emit("    left = 0;")
    emit("    clocks = 0;")
    emit("    n_in = 0;")
    emit("    n_out = 0;")
    for k, p in enumerate(streams):
        for kinds, _, var, start in PORT_STATE:
            if p.kind in kinds and start is not None:
                emit(f"    {var}_{p.name} = {start.format(k=k)};")
    emit("    state = failed ? S_END : S_LOAD;")
    emit("  end")
    emit("")
    emit("  always #5 clk = ~clk;")
    emit("")

    # The job sequencer, sources and sinks: one clocked process; bench state is
    # updated with blocking assignments, the block's inputs with non-blocking ones.
    emit("  always @(posedge clk) begin : run")
    emit("    case (state)")
    emit("    S_LOAD: begin  // set up the next job, reset the block")
    emit("      jd = jobs[job];")
    emit(f"      stall_mode = {_field(job, 'stall', 'jd')};")
    emit(f"      seg_stop = seg + {_field(job, 'segments', 'jd')};")
    for p in outs:
        emit(f"      stop_{p.name} = ptr_{p.name} + {_field(job, f'count_{p.name}', 'jd')};")
        emit(f"      mode_{p.name} = {_field(job, f'mode_{p.name}', 'jd')};")
    for p in setups:
        emit(f"      {_id(p.name)} <= {_field(job, f'setup_{p.name}', 'jd')};")
    emit("      rst <= 1;")
    emit("      reset_left = 2;")
    emit("      job_clocks = 0;")
    emit("      state = S_RESET;")
    emit("    end")
    emit("    S_RESET: begin")
    emit("      reset_left = reset_left - 1;")
    emit("      if (reset_left == 0) begin")
    emit("        rst <= 0;")
    emit("        state = S_RUN;")
    emit("      end")
    emit("    end")
    emit("    S_RUN: begin")
    emit("      job_clocks = job_clocks + 1;")
    for p in ins:
        emit(f"      lf_{p.name} = step(lf_{p.name});")
        emit(f"      pause_{p.name} = stall_mode != 0 && draw(lf_{p.name});")
    for p in outs:
        emit(f"      lf_{p.name} = step(lf_{p.name});")
        emit("      if (stall_mode == 2) begin")
        emit(f"        if (run_{p.name} == 0) begin")
        emit(f"          burst_{p.name} = ~burst_{p.name};")
        emit(f"          run_{p.name} = 1 + lf_{p.name}[7:0];")
        emit("        end")
        emit(f"        run_{p.name} = run_{p.name} - 1;")
        emit(f"        pause_{p.name} = burst_{p.name} && stall_pct > 0;")
        emit("      end else")
        emit(f"        pause_{p.name} = stall_mode != 0 && draw(lf_{p.name});")
    # Sources: only the current segment's port drives.
    emit("      xfer = 0;")
    emit("      hold = 0;")
    if ins:
        emit("      case (cur)")
        for k, p in enumerate(ins):
            emit(f"      {k}: begin")
            emit(f"        xfer = {p.name}__valid && {p.name}__ready;")
            emit(f"        hold = {p.name}__valid && !{p.name}__ready;")
            emit(f"        if (xfer) ptr_{p.name} = ptr_{p.name} + 1;")
            emit("      end")
        emit("      default: ;")
        emit("      endcase")
    emit("      if (xfer) begin")
    emit("        left = left - 1;")
    emit("        n_in = n_in + 1;")
    emit("      end")
    emit("      if (!hold) begin")
    emit("        while (left == 0 && seg < seg_stop) begin")
    emit(f"          cur = {_field(SEGMENT_LAYOUT, 'port', 'segs[seg]')};")
    emit(f"          left = {_field(SEGMENT_LAYOUT, 'count', 'segs[seg]')};")
    emit("          seg = seg + 1;")
    emit("        end")
    for p in ins:
        emit(f"        {p.name}__valid <= 0;")
    if ins:
        emit("        if (left > 0) case (cur)")
        for k, p in enumerate(ins):
            emit(f"          {k}: if (!pause_{p.name}) begin")
            emit(f"            {p.name}__valid <= 1;")
            emit(f"            {p.name}__payload <= mem_{p.name}[ptr_{p.name}];")
            emit("          end")
        emit("          default: ;")
        emit("        endcase")
    emit("      end")
    emit("      in_done = left == 0 && seg == seg_stop;")
    # Sinks.
    emit("      out_done = 1;")
    for p in outs:
        n = p.name
        emit(f"      if (!failed && {n}__ready && {n}__valid) begin")
        skip = f"mode_{n} == 0" if term is None or block.terminator[0] != n else (
            f"mode_{n} == 0 || {n}__payload[{term[0]}]")
        mask = f"{{{p.width}{{1'b1}}}}"
        if term is not None and block.terminator[0] == n:
            mask = f"(mode_{n} == 2 ? {p.width}'h{term[1]:x} : {{{p.width}{{1'b1}}}})"
        emit(f"        if ({skip}) begin")
        emit(f"          if ((({n}__payload ^ mem_{n}[ptr_{n}]) & {mask}) !== 0) begin")
        emit(f'            $display("FAIL {block.name} {n}.out.hex[%0d] (job %0d, transfer '
             f'%0d of its {n} stream): expected %h, got %h", ptr_{n}, job, '
             f'ptr_{n} - stop_{n} + {_field(job, f"count_{n}", "jd")}, mem_{n}[ptr_{n}], '
             f'{n}__payload);')
        emit("            failed = 1;")
        emit("          end")
        emit(f"          ptr_{n} = ptr_{n} + 1;")
        emit("          n_out = n_out + 1;")
        emit("        end")
        emit("      end")
        emit(f"      {n}__ready <= ptr_{n} < stop_{n} && !pause_{n};")
        emit(f"      out_done = out_done && ptr_{n} == stop_{n};")
    watch = [f"{_id(p.name)} === {_field(job, f'watch_{p.name}', 'jd')}" for p in watched]
    emit(f"      watch_ok = {' && '.join(watch) if watch else '1'};")
    emit("      if (failed) state = S_END;")
    emit(f"      else if (out_done && watch_ok && (in_done || {_field(job, 'partial', 'jd')})) "
         "begin")
    emit("        // Input a partial job did not take is skipped.")
    if ins:
        emit("        case (cur)")
        for k, p in enumerate(ins):
            emit(f"        {k}: ptr_{p.name} = ptr_{p.name} + left;")
        emit("        default: ;")
        emit("        endcase")
        emit("        while (seg < seg_stop) begin")
        emit(f"          case ({_field(SEGMENT_LAYOUT, 'port', 'segs[seg]')})")
        for k, p in enumerate(ins):
            emit(f"          {k}: ptr_{p.name} = ptr_{p.name} + "
                 f"{_field(SEGMENT_LAYOUT, 'count', 'segs[seg]')};")
        emit("          default: ;")
        emit("          endcase")
        emit("          seg = seg + 1;")
        emit("        end")
    emit("        left = 0;")
    for p in ins:
        emit(f"        {p.name}__valid <= 0;")
    for p in outs:
        emit(f"        {p.name}__ready <= 0;")
    emit("        clocks = clocks + job_clocks;")
    emit("        job = job + 1;")
    emit("        state = job == n_jobs ? S_END : S_LOAD;")
    emit(f"      end else if (job_clocks >= {_field(job, 'limit', 'jd')}) begin")
    emit(f'        $display("FAIL {block.name} job %0d: no end within its limit of %0d clocks '
         '(inputs: %0d of segment %0d left; outputs: %0s; watched outputs %0s)", job, '
         f'{_field(job, "limit", "jd")}, left, seg, out_done ? "complete" : "incomplete", '
         'watch_ok ? "as expected" : "not as expected");')
    for p in outs:
        emit(f'        $display("  {p.name}: %0d of %0d transfers", ptr_{p.name} - stop_{p.name} '
             f'+ {_field(job, f"count_{p.name}", "jd")}, {_field(job, f"count_{p.name}", "jd")});')
    for p in watched:
        emit(f'        $display("  {p.name} = %h, expected %h", {_id(p.name)}, '
             f'{_field(job, f"watch_{p.name}", "jd")});')
    emit("        failed = 1;")
    emit("        state = S_END;")
    emit("      end")
    emit("    end")
    emit("    default: begin  // S_END")
    emit("      if (!failed) $display(\"PASS " + block.name + "\");")
    emit(f'      $display("SUMMARY {block.name} %0s jobs %0d/%0d in %0d out %0d clocks %0d '
         'seed %0d", failed ? "FAIL" : "PASS", job, n_jobs, n_in, n_out, clocks, seed);')
    emit(f'      if (failed) $fatal(1, "{block.name}: FAIL");')
    emit("      $finish;")
    emit("    end")
    emit("    endcase")
    emit("  end")
    emit("endmodule")
    return "\n".join(lines) + "\n"


def source_dir() -> Path:
    """``tb/vectors`` of this checkout (or installation)."""
    import cimcodec.tb
    return Path(cimcodec.tb.__path__[0]) / "vectors"


def write_all(directory=None) -> list[Path]:
    """Write the bench of every registered block; returns the files."""
    where = Path(directory) if directory else source_dir()
    where.mkdir(parents=True, exist_ok=True)
    out = []
    for block in BLOCKS.values():
        path = where / f"{block.name}_tb.v"
        path.write_text(render(block))
        out.append(path)
    return out


if __name__ == "__main__":
    for written in write_all(sys.argv[1] if len(sys.argv) > 1 else None):
        print(written)
