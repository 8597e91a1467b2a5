"""CRM adapters: the built-in CRM and Salesforce behind one interface."""
