"""Reading tables, inferring and enforcing their schema, turning them into features, splitting."""
