"""The review page's core: decisions (records, store), the queue, the marks that tie a text's
numbers and names to facts, deciding, what the nightly does with decisions, and the exports."""
