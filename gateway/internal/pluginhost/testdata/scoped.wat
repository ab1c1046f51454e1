;; scoped: a careless RPC guest that passes its arguments straight to a host import, to prove the
;; host enforces the caller's scope whatever the guest does. The test calls tg_rpc with method "x"
;; and args_json = [selector][request] (under 16 KiB), so the RPCCall reads
;; 0a 01 78 12 <len: 1 or 2 varint bytes> <selector> <request…> at the buffer (1024). Selector 0 sends the request to
;; the presence import, 1 to publish. The answer is the JSON string "denied" when the import
;; returned HostErrDenied (-2), "failed" for another negative return, "ok" otherwise.
(module
  (import "teragate" "presence" (func $pres (param i32 i32 i32 i32) (result i32)))
  (import "teragate" "publish" (func $pub (param i32 i32) (result i32)))
  (memory (export "memory") 2)
  ;; RPCResult{return_json: "\"denied\""}, {"\"failed\""}, {"\"ok\""}
  (data (i32.const 4096) "\0a\08\22denied\22")
  (data (i32.const 4112) "\0a\08\22failed\22")
  (data (i32.const 4128) "\0a\04\22ok\22")
  (func (export "tg_abi_version") (result i32) (i32.const 1))
  (func (export "tg_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "tg_init") (param i32) (result i64) (i64.const 0))
  (func (export "tg_rpc") (param $len i32) (result i64)
    (local $n i32) (local $r i32) (local $at i32)
    (local.set $n (i32.load8_u (i32.const 1028)))
    (local.set $at (i32.const 1029))
    (if (i32.ge_u (local.get $n) (i32.const 128))
      (then
        (local.set $n (i32.or (i32.and (local.get $n) (i32.const 127))
                              (i32.shl (i32.load8_u (i32.const 1029)) (i32.const 7))))
        (local.set $at (i32.const 1030))))
    (local.set $n (i32.sub (local.get $n) (i32.const 1)))
    (if (i32.eqz (i32.load8_u (local.get $at)))
      (then (local.set $r (call $pres (i32.add (local.get $at) (i32.const 1)) (local.get $n) (i32.const 20000) (i32.const 1000))))
      (else (local.set $r (call $pub (i32.add (local.get $at) (i32.const 1)) (local.get $n)))))
    (if (i32.eq (local.get $r) (i32.const -2))
      (then (return (i64.or (i64.shl (i64.const 4096) (i64.const 32)) (i64.const 10)))))
    (if (i32.lt_s (local.get $r) (i32.const 0))
      (then (return (i64.or (i64.shl (i64.const 4112) (i64.const 32)) (i64.const 10)))))
    (i64.or (i64.shl (i64.const 4128) (i64.const 32)) (i64.const 6)))
)
