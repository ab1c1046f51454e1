;; features: instructions with every kind of immediate — SIMD (memory arguments, lanes, shuffle,
;; v128.const), bulk memory, saturating conversions, sign extension, reference types and table
;; instructions, constants of every width — and a loop over vectors.
(module
  (memory (export "memory") 1)
  (data $d "hello, world")
  (data (i32.const 1024) "\01\02\03\04")
  (table $ext 2 externref)
  (global $base i32 (i32.const 16))
  (func (export "simd") (param i32) (result i32)
    (i32x4.extract_lane 2 (i32x4.add (i32x4.splat (local.get 0)) (v128.const i32x4 1 2 3 4))))
  (func (export "shuffle") (result i32)
    (i8x16.extract_lane_u 0
      (i8x16.shuffle 15 14 13 12 11 10 9 8 7 6 5 4 3 2 1 0
        (v128.const i8x16 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)
        (v128.const i8x16 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0))))
  (func (export "lanes") (result i32)
    (v128.store offset=64 align=8 (i32.const 0) (v128.const i32x4 5 6 7 8))
    (v128.store32_lane 3 (i32.const 128) (v128.const i32x4 9 10 11 12))
    (i32.add
      (i32x4.extract_lane 1 (v128.load32_lane 1 (i32.const 68) (v128.const i32x4 0 0 0 0)))
      (i32.add (i32.load (i32.const 128))
        (i32x4.extract_lane 0 (v128.load32_zero (i32.const 1024))))))
  (func (export "bulk") (result i32)
    (memory.init $d (i32.const 100) (i32.const 0) (i32.const 12))
    (data.drop $d)
    (memory.copy (i32.const 200) (i32.const 100) (i32.const 12))
    (memory.fill (i32.const 200) (i32.const 0x41) (i32.const 2))
    (i32.add (i32.load8_u (i32.const 201)) (i32.load8_u (i32.const 207))))
  (func (export "sat") (param f64) (result i32) (i32.trunc_sat_f64_s (local.get 0)))
  (func (export "signext") (param i32) (result i32) (i32.extend8_s (local.get 0)))
  (func (export "refs") (result i32) (ref.is_null (ref.null extern)))
  (func (export "tables") (result i32)
    (drop (table.grow $ext (ref.null extern) (i32.const 3)))
    (table.fill $ext (i32.const 0) (ref.null extern) (i32.const 2))
    (table.size $ext))
  (func (export "consts") (result i64)
    (i64.add (i64.const -9223372036854775808)
      (i64.add (i64.trunc_f64_s (f64.const 1e15)) (i64.extend_i32_s (i32.add (global.get $base) (i32.const -2147483648))))))
  ;; vsum(n): Σ of n vectors loaded from memory, in a loop.
  (func (export "vsum") (param $n i32) (result i32)
    (local $v v128)
    (loop $l
      (local.set $v (i32x4.add (local.get $v) (v128.load (i32.const 1024))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (local.get $n)))
    (i32x4.extract_lane 0 (local.get $v))))
