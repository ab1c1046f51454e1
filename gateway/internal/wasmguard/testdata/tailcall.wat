;; tailcall: return_call and return_call_indirect (the tail-call proposal). count(n, 0) = n by n
;; tail calls and no loop: counted at each function's entry. forever never returns and never
;; grows the stack: only the deadline stops it.
(module
  (import "env" "add" (func $add (param i32 i32) (result i32)))
  (type $t (func (param i32 i32) (result i32)))
  (table 1 funcref)
  (elem (i32.const 0) $count)
  (func $count (export "count") (param i32 i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then (local.get 1))
      (else (return_call $next (i32.sub (local.get 0) (i32.const 1)) (call $add (local.get 1) (i32.const 1))))))
  (func $next (param i32 i32) (result i32)
    (return_call_indirect (type $t) (local.get 0) (local.get 1) (i32.const 0)))
  (func $forever (export "forever") (return_call $forever)))
