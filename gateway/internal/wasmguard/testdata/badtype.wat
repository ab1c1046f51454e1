;; badtype: invalid — call_indirect with type 1, and the module has one type. The rewriter's
;; () -> () type would be type 1: the rewriter must refuse, not make the module valid.
(module
  (table 1 funcref)
  (func (export "g") (call_indirect (type 1) (i32.const 0))))
