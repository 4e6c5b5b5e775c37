// idct_tb: plain self-checking bench of the cimcodec block `idct`,
// written by cimcodec.sim.plain_bench from the block's port list; do not edit.
// Built for IdctShape(coef_bits=16, q_bits=15, dsp=True, ports=1).
// Compile with the block's Verilog (DIR/idct.v), top module idct_tb; run with
//   +vectors=DIR  the block's vector directory (default .)
//   +seed=N       seed of the stall LFSRs (default 1)
//   +stall=P      percent of clocks a stalling job idles a source / refuses at
//                 a sink (default 30; 0: no stalls)
// File formats: cimcodec.sim.vectors (and DIR/manifest.json).
module idct_tb;
  parameter MAX_JOBS = 4096;
  parameter MAX_SEGMENTS = 65536;
  parameter DEPTH_i = 65536;
  parameter DEPTH_o = 65536;
  localparam JOB_W = 101;
  localparam SEG_W = 36;
  localparam NCOUNTS = 4;
  localparam S_LOAD = 0, S_RESET = 1, S_RUN = 2, S_END = 3;

  reg clk;
  reg rst;
  reg i__valid;
  wire i__ready;
  reg [30:0] i__payload;
  wire o__valid;
  reg o__ready;
  wire [8:0] o__payload;
  idct dut (
    .clk(clk),
    .rst(rst),
    .i__valid(i__valid),
    .i__ready(i__ready),
    .i__payload(i__payload),
    .o__valid(o__valid),
    .o__ready(o__ready),
    .o__payload(o__payload)
  );

  reg [31:0] counts [0:NCOUNTS-1];
  reg [JOB_W-1:0] jobs [0:MAX_JOBS-1];
  reg [SEG_W-1:0] segs [0:MAX_SEGMENTS-1];
  reg [30:0] mem_i [0:DEPTH_i-1];
  reg [8:0] mem_o [0:DEPTH_o-1];

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
  integer ptr_i;
  reg [31:0] lf_i;
  reg pause_i;
  integer ptr_o;
  integer stop_o;
  reg [1:0] mode_o;
  reg [31:0] lf_o;
  reg pause_o;
  integer run_o;
  reg burst_o;

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
          $display("FAIL idct: cannot read %0s", path);
        else
          $display("FAIL idct: %0s holds %0d lines, counts.hex gives %0d", path, got, n);
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
      $display("FAIL idct: %0d lines of %0s do not fit the memory of %0d: set parameter %0s above %0d", n, name, depth, name, n);
      failed = 1;
    end
  endtask

  initial begin : load
    clk = 0;
    rst = 1;
    failed = 0;
    i__valid = 0;
    i__payload = 0;
    o__ready = 0;
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
    if (!failed && counts[2] >= DEPTH_i) fail_depth("DEPTH_i", counts[2], DEPTH_i);
    if (!failed) check_lines("i.in.hex", counts[2]);
    if (!failed && counts[2] > 0) $readmemh(path, mem_i, 0, counts[2] - 1);
    if (!failed && counts[3] >= DEPTH_o) fail_depth("DEPTH_o", counts[3], DEPTH_o);
    if (!failed) check_lines("o.out.hex", counts[3]);
    if (!failed && counts[3] > 0) $readmemh(path, mem_o, 0, counts[3] - 1);
    if (!failed && n_jobs == 0) begin
      $display("FAIL idct: %0s/jobs.hex holds no job", dir);
      failed = 1;
    end
    job = 0;
    cur = 0;
    seg = 0;
    left = 0;
    clocks = 0;
    n_in = 0;
    n_out = 0;
    ptr_i = 0;
    lf_i = seed_of(seed, 0);
    ptr_o = 0;
    lf_o = seed_of(seed, 1);
    run_o = 0;
    burst_o = 0;
    state = failed ? S_END : S_LOAD;
  end

  always #5 clk = ~clk;

  always @(posedge clk) begin : run
    case (state)
    S_LOAD: begin  // set up the next job, reset the block
      jd = jobs[job];
      stall_mode = jd[65:64];
      seg_stop = seg + jd[63:32];
      stop_o = ptr_o + jd[98:67];
      mode_o = jd[100:99];
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
      lf_i = step(lf_i);
      pause_i = stall_mode != 0 && draw(lf_i);
      lf_o = step(lf_o);
      if (stall_mode == 2) begin
        if (run_o == 0) begin
          burst_o = ~burst_o;
          run_o = 1 + lf_o[7:0];
        end
        run_o = run_o - 1;
        pause_o = burst_o && stall_pct > 0;
      end else
        pause_o = stall_mode != 0 && draw(lf_o);
      xfer = 0;
      hold = 0;
      case (cur)
      0: begin
        xfer = i__valid && i__ready;
        hold = i__valid && !i__ready;
        if (xfer) ptr_i = ptr_i + 1;
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
        i__valid <= 0;
        if (left > 0) case (cur)
          0: if (!pause_i) begin
            i__valid <= 1;
            i__payload <= mem_i[ptr_i];
          end
          default: ;
        endcase
      end
      in_done = left == 0 && seg == seg_stop;
      out_done = 1;
      if (!failed && o__ready && o__valid) begin
        if (mode_o == 0) begin
          if (((o__payload ^ mem_o[ptr_o]) & {9{1'b1}}) !== 0) begin
            $display("FAIL idct o.out.hex[%0d] (job %0d, transfer %0d of its o stream): expected %h, got %h", ptr_o, job, ptr_o - stop_o + jd[98:67], mem_o[ptr_o], o__payload);
            failed = 1;
          end
          ptr_o = ptr_o + 1;
          n_out = n_out + 1;
        end
      end
      o__ready <= ptr_o < stop_o && !pause_o;
      out_done = out_done && ptr_o == stop_o;
      watch_ok = 1;
      if (failed) state = S_END;
      else if (out_done && watch_ok && (in_done || jd[66:66])) begin
        // Input a partial job did not take is skipped.
        case (cur)
        0: ptr_i = ptr_i + left;
        default: ;
        endcase
        while (seg < seg_stop) begin
          case (segs[seg][3:0])
          0: ptr_i = ptr_i + segs[seg][35:4];
          default: ;
          endcase
          seg = seg + 1;
        end
        left = 0;
        i__valid <= 0;
        o__ready <= 0;
        clocks = clocks + job_clocks;
        job = job + 1;
        state = job == n_jobs ? S_END : S_LOAD;
      end else if (job_clocks >= jd[31:0]) begin
        $display("FAIL idct job %0d: no end within its limit of %0d clocks (inputs: %0d of segment %0d left; outputs: %0s; watched outputs %0s)", job, jd[31:0], left, seg, out_done ? "complete" : "incomplete", watch_ok ? "as expected" : "not as expected");
        $display("  o: %0d of %0d transfers", ptr_o - stop_o + jd[98:67], jd[98:67]);
        failed = 1;
        state = S_END;
      end
    end
    default: begin  // S_END
      if (!failed) $display("PASS idct");
      $display("SUMMARY idct %0s jobs %0d/%0d in %0d out %0d clocks %0d seed %0d", failed ? "FAIL" : "PASS", job, n_jobs, n_in, n_out, clocks, seed);
      if (failed) $fatal(1, "idct: FAIL");
      $finish;
    end
    endcase
  end
endmodule
