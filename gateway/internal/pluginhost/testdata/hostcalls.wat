;; hostcalls: tg_rpc exercises the host imports and returns what they answered: a 12-byte
;; record [i32 log ok][i32 directory ret][i32 publish-with-bad-pointer ret] followed by the
;; QueryResult bytes the directory import wrote. The request is ignored; the DirectoryQuery is
;; copied from the call's args_json by the test (the RPCCall's field 2 starts at buffer+2 when
;; method is empty), so the test drives the query.
(module
  (import "teragate" "log" (func $log (param i32 i32 i32)))
  (import "teragate" "directory" (func $dir (param i32 i32 i32 i32) (result i32)))
  (import "teragate" "publish" (func $pub (param i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "hello from wat")
  (func (export "tg_abi_version") (result i32) (i32.const 1))
  (func (export "tg_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "tg_init") (param i32) (result i64) (i64.const 0))
  (func (export "tg_rpc") (param $len i32) (result i64)
    (local $n i32)
    (call $log (i32.const 2) (i32.const 16) (i32.const 14))
    (call $log (i32.const 2) (i32.const 0x7ffffff0) (i32.const 100)) ;; bad pointer: ignored
    (i32.store (i32.const 4096) (i32.const 1))
    ;; the request: RPCCall{args_json: <DirectoryQuery>} = 0x12 len bytes at 1024
    (local.set $n (call $dir (i32.const 1026) (i32.load8_u (i32.const 1025)) (i32.const 4108) (i32.const 1000)))
    (i32.store (i32.const 4100) (local.get $n))
    (i32.store (i32.const 4104) (call $pub (i32.const 0x7ffffff0) (i32.const 10)))
    (if (i32.lt_s (local.get $n) (i32.const 0)) (then (local.set $n (i32.const 0))))
    (i64.or (i64.shl (i64.const 4096) (i64.const 32)) (i64.extend_i32_u (i32.add (local.get $n) (i32.const 12)))))
)
