;; filter.sessionstop: a teragate filter plugin written by hand in WebAssembly text (ABI v1,
;; sdk/abi), proof that the ABI is not Go-only. It filters device connections: a StopSessionEvent
;; reaches every device, every other event reaches none (both rules cacheable).
;;
;; Build: wat2wasm filter.sessionstop.wat -o filter.sessionstop.wasm   (Debian package wabt)
;;
;; Exports: memory, _initialize, tg_abi_version, tg_buffer, tg_init, tg_filter.
;; Imports: teragate.log (one line at init).
;;
;; Memory: page 0 holds constants, the request buffer starts at 64 KiB and grows with memory.grow.
(module
  (import "teragate" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)

  ;; InitResult{name: "filter.sessionstop", version: "1.0.0", filter_kinds: ["device"]}
  (data (i32.const 1024) "\0a\12filter.sessionstop\12\051.0.0\1a\06device")
  ;; the event type that reaches everyone (34 bytes)
  (data (i32.const 1100) "opentera.protobuf.StopSessionEvent")
  ;; FilterResult{rule: {any_of: [{}], cacheable: true}}
  (data (i32.const 1200) "\0a\04\0a\00\20\01")
  ;; FilterResult{rule: {cacheable: true}}: nobody
  (data (i32.const 1210) "\0a\02\20\01")
  ;; error message (17 bytes)
  (data (i32.const 1220) "malformed request")
  ;; log line (24 bytes)
  (data (i32.const 1260) "sessionstop filter ready")

  (global $buf i32 (i32.const 65536))
  (global $pos (mut i32) (i32.const 0))
  (global $end (mut i32) (i32.const 0))
  (global $bad (mut i32) (i32.const 0))

  (func (export "_initialize"))

  (func (export "tg_abi_version") (result i32) (i32.const 1))

  ;; tg_buffer(size) -> ptr: the one request buffer, grown when size does not fit; 0 when it
  ;; cannot grow.
  (func (export "tg_buffer") (param $size i32) (result i32)
    (local $have i32)
    (if (i32.lt_s (local.get $size) (i32.const 0)) (then (return (i32.const 0))))
    (local.set $have (i32.sub (i32.mul (memory.size) (i32.const 65536)) (global.get $buf)))
    (if (i32.gt_u (local.get $size) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow (i32.shr_u
                (i32.add (i32.sub (local.get $size) (local.get $have)) (i32.const 65535))
                (i32.const 16)))
              (i32.const -1))
          (then (return (i32.const 0))))))
    (global.get $buf))

  ;; pack(ptr, len) -> (ptr << 32) | len
  (func $pack (param $ptr i32) (param $len i32) (result i64)
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
      (i64.extend_i32_u (local.get $len))))

  ;; the error result: the message with the ErrorFlag bit (1 << 31) set in the length word
  (func $fail (result i64)
    (call $pack (i32.const 1220) (i32.or (i32.const 17) (i32.const 0x80000000))))

  (func (export "tg_init") (param $n i32) (result i64)
    (call $log (i32.const 2) (i32.const 1260) (i32.const 24))
    (call $pack (i32.const 1024) (i32.const 35)))

  ;; varint reads a varint at $pos (at most 5 bytes, enough for tags and lengths), advancing $pos;
  ;; it sets $bad when the input ends early.
  (func $varint (result i32)
    (local $v i32) (local $shift i32) (local $b i32)
    (block $done
      (loop $next
        (if (i32.ge_u (global.get $pos) (global.get $end))
          (then (global.set $bad (i32.const 1)) (br $done)))
        (local.set $b (i32.load8_u (global.get $pos)))
        (global.set $pos (i32.add (global.get $pos) (i32.const 1)))
        (local.set $v (i32.or (local.get $v)
          (i32.shl (i32.and (local.get $b) (i32.const 0x7f)) (local.get $shift))))
        (local.set $shift (i32.add (local.get $shift) (i32.const 7)))
        (br_if $done (i32.eqz (i32.and (local.get $b) (i32.const 0x80))))
        (if (i32.ge_u (local.get $shift) (i32.const 35))
          (then (global.set $bad (i32.const 1)) (br $done)))
        (br $next)))
    (local.get $v))

  ;; is_stop reports whether the len bytes at p are "opentera.protobuf.StopSessionEvent".
  (func $is_stop (param $p i32) (param $len i32) (result i32)
    (local $i i32)
    (if (i32.ne (local.get $len) (i32.const 34)) (then (return (i32.const 0))))
    (block $diff
      (loop $next
        (if (i32.ge_u (local.get $i) (i32.const 34)) (then (return (i32.const 1))))
        (br_if $diff (i32.ne
          (i32.load8_u (i32.add (local.get $p) (local.get $i)))
          (i32.load8_u (i32.add (i32.const 1100) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  ;; tg_filter(len): walks the FilterRequest's fields looking for event_type (field 3).
  (func (export "tg_filter") (param $n i32) (result i64)
    (local $tag i32) (local $len i32)
    (global.set $pos (global.get $buf))
    (global.set $end (i32.add (global.get $buf) (local.get $n)))
    (global.set $bad (i32.const 0))
    (block $none
      (loop $field
        (br_if $none (i32.ge_u (global.get $pos) (global.get $end)))
        (local.set $tag (call $varint))
        (if (global.get $bad) (then (return (call $fail))))
        (if (i32.eq (i32.and (local.get $tag) (i32.const 7)) (i32.const 0))
          (then ;; varint field: skip it
            (drop (call $varint))
            (if (global.get $bad) (then (return (call $fail))))
            (br $field)))
        (if (i32.ne (i32.and (local.get $tag) (i32.const 7)) (i32.const 2))
          (then (return (call $fail))))
        (local.set $len (call $varint))
        (if (i32.or (global.get $bad)
              (i32.gt_u (local.get $len) (i32.sub (global.get $end) (global.get $pos))))
          (then (return (call $fail))))
        (if (i32.eq (i32.shr_u (local.get $tag) (i32.const 3)) (i32.const 3))
          (then
            (if (call $is_stop (global.get $pos) (local.get $len))
              (then (return (call $pack (i32.const 1200) (i32.const 6)))))
            (br $none)))
        (global.set $pos (i32.add (global.get $pos) (local.get $len)))
        (br $field)))
    (call $pack (i32.const 1210) (i32.const 4)))
)
