// huffman_tb: plain self-checking bench of the cimcodec block `huffman`,
// written by cimcodec.sim.plain_bench from the block's port list; do not edit.
// Built for HuffmanShape(tables=2, chunk_bits=32, reserve_bits=64, fast_bits=8).
// Compile with the block's Verilog (DIR/huffman.v), top module huffman_tb; run with
//   +vectors=DIR  the block's vector directory (default .)
//   +seed=N       seed of the stall LFSRs (default 1)
//   +stall=P      percent of clocks a stalling job idles a source / refuses at
//                 a sink (default 30; 0: no stalls)
// File formats: cimcodec.sim.vectors (and DIR/manifest.json).
module huffman_tb;
  parameter MAX_JOBS = 4096;
  parameter MAX_SEGMENTS = 65536;
  parameter DEPTH_table = 65536;
  parameter DEPTH_bits = 65536;
  parameter DEPTH_sym = 65536;
  localparam JOB_W = 105;
  localparam SEG_W = 36;
  localparam NCOUNTS = 5;
  localparam S_LOAD = 0, S_RESET = 1, S_RUN = 2, S_END = 3;

  reg clk;
  reg rst;
  reg table__valid;
  wire table__ready;
  reg [9:0] table__payload;
  reg bits__valid;
  wire bits__ready;
  reg [38:0] bits__payload;
  wire sym__valid;
  reg sym__ready;
  wire [28:0] sym__payload;
  reg [0:0] dc_slot;
  reg [0:0] ac_slot;
  wire [0:0] error;
  wire [0:0] table_error;
  huffman dut (
    .clk(clk),
    .rst(rst),
    .table__valid(table__valid),
    .table__ready(table__ready),
    .table__payload(table__payload),
    .bits__valid(bits__valid),
    .bits__ready(bits__ready),
    .bits__payload(bits__payload),
    .sym__valid(sym__valid),
    .sym__ready(sym__ready),
    .sym__payload(sym__payload),
    .dc_slot(dc_slot),
    .ac_slot(ac_slot),
    .error(error),
    .table_error(table_error)
  );

  reg [31:0] counts [0:NCOUNTS-1];
  reg [JOB_W-1:0] jobs [0:MAX_JOBS-1];
  reg [SEG_W-1:0] segs [0:MAX_SEGMENTS-1];
  reg [9:0] mem_table [0:DEPTH_table-1];
  reg [38:0] mem_bits [0:DEPTH_bits-1];
  reg [28:0] mem_sym [0:DEPTH_sym-1];

  reg [8*1024-1:0] dir;
  reg [8*1100-1:0] path;
  reg [31:0] seed;
  integer stall_pct;
  reg [1:0] state;
  reg failed;
  integer n_jobs, n_segs, job, seg, seg_stop, left, reset_left;
  integer job_clocks, clocks, n_in, n_out;
  reg [3:0] cur;
  reg [JOB_W-1:0] jd;
  reg [1:0] stall_mode;
  reg hold, xfer, in_done, out_done, watch_ok;
  integer ptr_table;
  reg [31:0] lf_table;
  reg pause_table;
  integer ptr_bits;
  reg [31:0] lf_bits;
  reg pause_bits;
  integer ptr_sym;
  integer stop_sym;
  reg [1:0] mode_sym;
  reg [31:0] lf_sym;
  reg pause_sym;
  integer run_sym;
  reg burst_sym;

  function [31:0] step;  // 16 steps of the stall LFSR
    input [31:0] x;
    integer i;
    begin
      step = x;
      for (i = 0; i < 16; i = i + 1)
        step = step[0] ? (step >> 1) ^ 32'h80200003 : step >> 1;
    end
  endfunction

  function draw;  // a pause on stall_pct percent of the draws
    input [31:0] x;
    begin
      draw = ({16'b0, x[15:0]} * 32'd100) < (stall_pct << 16);
    end
  endfunction

  function [31:0] seed_of;  // never zero
    input [31:0] s;
    input [31:0] k;
    begin
      seed_of = s * 32'h9e3779b1 + (k + 1) * 32'h7f4a7c15;
      if (seed_of == 0) seed_of = 32'h1;
    end
  endfunction

  function integer lines_of;  // data lines of the file `path`, -1 if unreadable
    input integer unused;
    integer fd, n;
    reg [8*2048-1:0] text;
    reg [7:0] c;
    begin
      fd = $fopen(path, "r");
      lines_of = -1;
      if (fd != 0) begin
        lines_of = 0;
        n = $fgets(text, fd);
        while (n > 0) begin
          c = text >> (8 * (n - 1));  // the line's first character
          if ((c >= "0" && c <= "9") || (c >= "a" && c <= "f") || (c >= "A" && c <= "F"))
            lines_of = lines_of + 1;
          n = $fgets(text, fd);
        end
        $fclose(fd);
      end
    end
  endfunction

  task check_lines;  // the file `name` of the vector directory holds n lines
    input [8*64-1:0] name;
    input integer n;
    integer got;
    begin
      $sformat(path, "%0s/%0s", dir, name);
      got = lines_of(0);
      if (got != n) begin
        if (got < 0)
          $display("FAIL huffman: cannot read %0s", path);
        else
          $display("FAIL huffman: %0s holds %0d lines, counts.hex gives %0d", path, got, n);
        failed = 1;
      end
    end
  endtask

  task read_counts;
    begin
      check_lines("counts.hex", NCOUNTS);
      if (!failed) $readmemh(path, counts);
    end
  endtask

  task fail_depth;
    input [8*64-1:0] name;
    input integer n;
    input integer depth;
    begin
      $display("FAIL huffman: %0d lines of %0s do not fit the memory of %0d: set parameter %0s above %0d", n, name, depth, name, n);
      failed = 1;
    end
  endtask

  initial begin : load
    clk = 0;
    rst = 1;
    failed = 0;
    table__valid = 0;
    table__payload = 0;
    bits__valid = 0;
    bits__payload = 0;
    sym__ready = 0;
    dc_slot = 0;
    ac_slot = 0;
    if (!$value$plusargs("vectors=%s", dir)) dir = ".";
    if (!$value$plusargs("seed=%d", seed)) seed = 1;
    if (!$value$plusargs("stall=%d", stall_pct)) stall_pct = 30;
    read_counts;
    n_jobs = counts[0];
    n_segs = counts[1];
    if (!failed && n_jobs >= MAX_JOBS) fail_depth("MAX_JOBS", n_jobs, MAX_JOBS);
    if (!failed) check_lines("jobs.hex", n_jobs);
    if (!failed && n_jobs > 0) $readmemh(path, jobs, 0, n_jobs - 1);
    if (!failed && n_segs >= MAX_SEGMENTS) fail_depth("MAX_SEGMENTS", n_segs, MAX_SEGMENTS);
    if (!failed) check_lines("segments.hex", n_segs);
    if (!failed && n_segs > 0) $readmemh(path, segs, 0, n_segs - 1);
    if (!failed && counts[2] >= DEPTH_table) fail_depth("DEPTH_table", counts[2], DEPTH_table);
    if (!failed) check_lines("table.in.hex", counts[2]);
    if (!failed && counts[2] > 0) $readmemh(path, mem_table, 0, counts[2] - 1);
    if (!failed && counts[3] >= DEPTH_bits) fail_depth("DEPTH_bits", counts[3], DEPTH_bits);
    if (!failed) check_lines("bits.in.hex", counts[3]);
    if (!failed && counts[3] > 0) $readmemh(path, mem_bits, 0, counts[3] - 1);
    if (!failed && counts[4] >= DEPTH_sym) fail_depth("DEPTH_sym", counts[4], DEPTH_sym);
    if (!failed) check_lines("sym.out.hex", counts[4]);
    if (!failed && counts[4] > 0) $readmemh(path, mem_sym, 0, counts[4] - 1);
    if (!failed && n_jobs == 0) begin
      $display("FAIL huffman: %0s/jobs.hex holds no job", dir);
      failed = 1;
    end
    job = 0;
    cur = 0;
    seg = 0;
    left = 0;
    clocks = 0;
    n_in = 0;
    n_out = 0;
    ptr_table = 0;
    lf_table = seed_of(seed, 0);
    ptr_bits = 0;
    lf_bits = seed_of(seed, 1);
    ptr_sym = 0;
    lf_sym = seed_of(seed, 2);
    run_sym = 0;
    burst_sym = 0;
    state = failed ? S_END : S_LOAD;
  end

  always #5 clk = ~clk;

  always @(posedge clk) begin : run
    case (state)
    S_LOAD: begin  // set up the next job, reset the block
      jd = jobs[job];
      stall_mode = jd[65:64];
      seg_stop = seg + jd[63:32];
      stop_sym = ptr_sym + jd[98:67];
      mode_sym = jd[100:99];
      dc_slot <= jd[101:101];
      ac_slot <= jd[102:102];
      rst <= 1;
      reset_left = 2;
      job_clocks = 0;
      state = S_RESET;
    end
    S_RESET: begin
      reset_left = reset_left - 1;
      if (reset_left == 0) begin
        rst <= 0;
        state = S_RUN;
      end
    end
    S_RUN: begin
      job_clocks = job_clocks + 1;
      lf_table = step(lf_table);
      pause_table = stall_mode != 0 && draw(lf_table);
      lf_bits = step(lf_bits);
      pause_bits = stall_mode != 0 && draw(lf_bits);
      lf_sym = step(lf_sym);
      if (stall_mode == 2) begin
        if (run_sym == 0) begin
          burst_sym = ~burst_sym;
          run_sym = 1 + lf_sym[7:0];
        end
        run_sym = run_sym - 1;
        pause_sym = burst_sym && stall_pct > 0;
      end else
        pause_sym = stall_mode != 0 && draw(lf_sym);
      xfer = 0;
      hold = 0;
      case (cur)
      0: begin
        xfer = table__valid && table__ready;
        hold = table__valid && !table__ready;
        if (xfer) ptr_table = ptr_table + 1;
      end
      1: begin
        xfer = bits__valid && bits__ready;
        hold = bits__valid && !bits__ready;
        if (xfer) ptr_bits = ptr_bits + 1;
      end
      default: ;
      endcase
      if (xfer) begin
        left = left - 1;
        n_in = n_in + 1;
      end
      if (!hold) begin
        while (left == 0 && seg < seg_stop) begin
          cur = segs[seg][3:0];
          left = segs[seg][35:4];
          seg = seg + 1;
        end
        table__valid <= 0;
        bits__valid <= 0;
        if (left > 0) case (cur)
          0: if (!pause_table) begin
            table__valid <= 1;
            table__payload <= mem_table[ptr_table];
          end
          1: if (!pause_bits) begin
            bits__valid <= 1;
            bits__payload <= mem_bits[ptr_bits];
          end
          default: ;
        endcase
      end
      in_done = left == 0 && seg == seg_stop;
      out_done = 1;
      if (!failed && sym__ready && sym__valid) begin
        if (mode_sym == 0) begin
          if (((sym__payload ^ mem_sym[ptr_sym]) & {29{1'b1}}) !== 0) begin
            $display("FAIL huffman sym.out.hex[%0d] (job %0d, transfer %0d of its sym stream): expected %h, got %h", ptr_sym, job, ptr_sym - stop_sym + jd[98:67], mem_sym[ptr_sym], sym__payload);
            failed = 1;
          end
          ptr_sym = ptr_sym + 1;
          n_out = n_out + 1;
        end
      end
      sym__ready <= ptr_sym < stop_sym && !pause_sym;
      out_done = out_done && ptr_sym == stop_sym;
      watch_ok = error === jd[103:103] && table_error === jd[104:104];
      if (failed) state = S_END;
      else if (out_done && watch_ok && (in_done || jd[66:66])) begin
        // Input a partial job did not take is skipped.
        case (cur)
        0: ptr_table = ptr_table + left;
        1: ptr_bits = ptr_bits + left;
        default: ;
        endcase
        while (seg < seg_stop) begin
          case (segs[seg][3:0])
          0: ptr_table = ptr_table + segs[seg][35:4];
          1: ptr_bits = ptr_bits + segs[seg][35:4];
          default: ;
          endcase
          seg = seg + 1;
        end
        left = 0;
        table__valid <= 0;
        bits__valid <= 0;
        sym__ready <= 0;
        clocks = clocks + job_clocks;
        job = job + 1;
        state = job == n_jobs ? S_END : S_LOAD;
      end else if (job_clocks >= jd[31:0]) begin
        $display("FAIL huffman job %0d: no end within its limit of %0d clocks (inputs: %0d of segment %0d left; outputs: %0s; watched outputs %0s)", job, jd[31:0], left, seg, out_done ? "complete" : "incomplete", watch_ok ? "as expected" : "not as expected");
        $display("  sym: %0d of %0d transfers", ptr_sym - stop_sym + jd[98:67], jd[98:67]);
        $display("  error = %h, expected %h", error, jd[103:103]);
        $display("  table_error = %h, expected %h", table_error, jd[104:104]);
        failed = 1;
        state = S_END;
      end
    end
    default: begin  // S_END
      if (!failed) $display("PASS huffman");
      $display("SUMMARY huffman %0s jobs %0d/%0d in %0d out %0d clocks %0d seed %0d", failed ? "FAIL" : "PASS", job, n_jobs, n_in, n_out, clocks, seed);
      if (failed) $fatal(1, "huffman: FAIL");
      $finish;
    end
    endcase
  end
endmodule
