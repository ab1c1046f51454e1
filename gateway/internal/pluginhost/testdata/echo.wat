;; echo: a well-behaved guest whose answers come from its config, so tests and benchmarks can
;; script it. config = [u32 init_len][u32 first_len][u32 second_len] init first second rpc
;; (little-endian). tg_init returns `init`; tg_filter returns `second` when the request holds
;; recipients (field 5) and `first` otherwise; tg_rpc returns `rpc`.
(module
  (memory (export "memory") 4)
  (global $cfg (mut i32) (i32.const 131072))  ;; config copy lives at 128 KiB
  (global $cfglen (mut i32) (i32.const 0))
  (func (export "tg_abi_version") (result i32) (i32.const 1))
  (func (export "tg_buffer") (param $n i32) (result i32)
    ;; buffer at 1024, up to 127 KiB
    (if (i32.gt_u (local.get $n) (i32.const 130048)) (then (return (i32.const 0))))
    (i32.const 1024))
  ;; varint at *$p: returns value, advances global $pos
  (global $pos (mut i32) (i32.const 0))
  (func $varint (result i32)
    (local $v i32) (local $shift i32) (local $b i32)
    (loop $more
      (local.set $b (i32.load8_u (global.get $pos)))
      (global.set $pos (i32.add (global.get $pos) (i32.const 1)))
      (local.set $v (i32.or (local.get $v) (i32.shl (i32.and (local.get $b) (i32.const 127)) (local.get $shift))))
      (local.set $shift (i32.add (local.get $shift) (i32.const 7)))
      (br_if $more (i32.and (local.get $b) (i32.const 128))))
    (local.get $v))
  (func $pack (param $p i32) (param $n i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32)) (i64.extend_i32_u (local.get $n))))
  (func (export "tg_init") (param $len i32) (result i64)
    (local $end i32) (local $tag i32) (local $l i32)
    (global.set $pos (i32.const 1024))
    (local.set $end (i32.add (i32.const 1024) (local.get $len)))
    (block $done
      (loop $fields
        (br_if $done (i32.ge_u (global.get $pos) (local.get $end)))
        (local.set $tag (call $varint))
        (if (i32.eq (i32.and (local.get $tag) (i32.const 7)) (i32.const 0))
          (then (drop (call $varint)) (br $fields)))
        (local.set $l (call $varint))
        (if (i32.eq (local.get $tag) (i32.const 0x12))
          (then
            (memory.copy (global.get $cfg) (global.get $pos) (local.get $l))
            (global.set $cfglen (local.get $l))))
        (global.set $pos (i32.add (global.get $pos) (local.get $l)))
        (br $fields)))
    (if (i32.lt_u (global.get $cfglen) (i32.const 12)) (then (return (call $pack (i32.const 0) (i32.const 0)))))
    (call $pack (i32.add (global.get $cfg) (i32.const 12)) (i32.load (global.get $cfg))))
  (func (export "tg_filter") (param $len i32) (result i64)
    (local $end i32) (local $tag i32) (local $l i32) (local $has i32) (local $base i32)
    (global.set $pos (i32.const 1024))
    (local.set $end (i32.add (i32.const 1024) (local.get $len)))
    (block $done
      (loop $fields
        (br_if $done (i32.ge_u (global.get $pos) (local.get $end)))
        (local.set $tag (call $varint))
        (if (i32.eq (local.get $tag) (i32.const 0x2a)) (then (local.set $has (i32.const 1))))
        (if (i32.eq (i32.and (local.get $tag) (i32.const 7)) (i32.const 0))
          (then (drop (call $varint)) (br $fields)))
        (local.set $l (call $varint))
        (global.set $pos (i32.add (global.get $pos) (local.get $l)))
        (br $fields)))
    (local.set $base (i32.add (i32.add (global.get $cfg) (i32.const 12)) (i32.load (global.get $cfg))))
    (if (local.get $has)
      (then (return (call $pack
        (i32.add (local.get $base) (i32.load offset=4 (global.get $cfg)))
        (i32.load offset=8 (global.get $cfg))))))
    (call $pack (local.get $base) (i32.load offset=4 (global.get $cfg))))
  (func (export "tg_rpc") (param $len i32) (result i64)
    (local $p i32)
    (local.set $p (i32.add (i32.add (i32.add (i32.add (global.get $cfg) (i32.const 12))
      (i32.load (global.get $cfg))) (i32.load offset=4 (global.get $cfg))) (i32.load offset=8 (global.get $cfg))))
    (call $pack (local.get $p) (i32.sub (i32.add (global.get $cfg) (global.get $cfglen)) (local.get $p))))
)
