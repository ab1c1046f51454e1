;; bulkcopy: tg_filter grows its memory to 1,000 pages and copies its first 32,000,000 bytes over
;; the next ones 10,000 times (minutes of work) in a loop whose body is a few bytes of code: the
;; per-call deadline must stop it.
(module
  (memory (export "memory") 2)
  (func (export "tg_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "tg_abi_version") (result i32) (i32.const 1))
  (func (export "tg_init") (param i32) (result i64) (i64.const 0))
  (func (export "tg_filter") (param i32) (result i64)
    (local $i i32)
    (if (i32.lt_u (memory.size) (i32.const 1000))
      (then (drop (memory.grow (i32.sub (i32.const 1000) (memory.size))))))
    (local.set $i (i32.const 10000))
    (loop $l
      (memory.copy (i32.const 32000000) (i32.const 0) (i32.const 32000000))
      (br_if $l (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))
    (i64.const 0))
)
