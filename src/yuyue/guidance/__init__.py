"""Smart guidance (智能导诊): from a patient's own words, age and sex to the departments to
book, or to 120 at once for red-flag symptoms. The knowledge is a file clinicians edit
(knowledge.toml), checked when the server starts."""
